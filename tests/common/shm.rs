//! Raw access to a channel's shared-memory object through `/dev/shm`, for
//! the tests that scribble on it (or read its words).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

pub fn shm_path(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name.trim_start_matches('/'))
}

/// The segment's file, opened for reading and writing: writes land in the
/// pages every endpoint maps.
pub fn shm_file(name: &str) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm_path(name))
        .expect("open the segment's /dev/shm file")
}

pub fn write_bytes(file: &File, offset: u64, bytes: &[u8]) {
    file.write_all_at(bytes, offset)
        .expect("scribble on the segment");
}

pub fn write_u64(file: &File, offset: u64, value: u64) {
    write_bytes(file, offset, &value.to_ne_bytes());
}

pub fn write_u32(file: &File, offset: u64, value: u32) {
    write_bytes(file, offset, &value.to_ne_bytes());
}

pub fn read_bytes<const N: usize>(file: &File, offset: u64) -> [u8; N] {
    let mut bytes = [0u8; N];
    file.read_exact_at(&mut bytes, offset)
        .expect("read the segment");
    bytes
}

pub fn read_u64(file: &File, offset: u64) -> u64 {
    u64::from_ne_bytes(read_bytes(file, offset))
}

pub fn read_u32(file: &File, offset: u64) -> u32 {
    u32::from_ne_bytes(read_bytes(file, offset))
}
