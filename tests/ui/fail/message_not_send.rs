// A message type that is not `Send` (here, one that claims to be `ShmSafe`
// by hand while holding a marker that is not) makes endpoints that are not
// `Send` either: they would move its values to another thread.
use shmchan::__private::bytemuck;
use std::marker::PhantomData;

#[derive(Clone, Copy)]
#[repr(transparent)]
struct Local(u64, PhantomData<*const u8>);

// SAFETY: a `u64` and a zero-sized marker: any bit pattern is valid.
unsafe impl bytemuck::Zeroable for Local {}
// SAFETY: as above.
unsafe impl bytemuck::Pod for Local {}
// SAFETY: plain data; the fingerprint is this test's own.
unsafe impl shmchan::ShmSafe for Local {
    const SCHEMA: u64 = 1;
    const NAME: &'static str = "Local";
    const LAYOUT: &'static str = "Local";
}

fn assert_send<T: Send>() {}

fn main() {
    assert_send::<shmchan::spsc::Sender<Local>>();
    assert_send::<shmchan::mpmc::Receiver<Local>>();
}
