//! Types whose values mean the same thing in every process: [`ShmSafe`].
//!
//! A message crosses a process boundary as raw bytes, so its type must be
//! plain data (any bit pattern valid, no padding, no drop glue: what
//! `bytemuck::Pod` means) *and* position-independent: nothing in it may
//! point into the sender's address space. The derive accepts nothing but
//! `ShmSafe` fields (and, marked `#[shm(pod)]`, `bytemuck::Pod` fields of
//! types from other crates), so it excludes references, raw pointers, `Box`,
//! `Vec`, `String`, `bool`, `char` and enums.
//!
//! `ShmSafe` does not require `bytemuck::Pod`, and the derive implements
//! nothing of bytemuck's: a type may derive both, or `ShmSafe` alone without
//! depending on bytemuck.
//!
//! Each type also carries a fingerprint of its layout, [`ShmSafe::SCHEMA`],
//! computed at compile time, and a readable description of it,
//! [`ShmSafe::LAYOUT`]. Both are stored in the segment header so that a
//! process opening a channel with a different type is refused with an error
//! that says which field differs.

use core::marker::PhantomData;

/// A type that can be sent through a shmchan channel to another process.
///
/// Derive it with `#[derive(ShmSafe)]` on a `#[repr(C)]` or
/// `#[repr(transparent)]` struct whose fields are all `ShmSafe` and which has
/// no padding. It goes beside bytemuck's derives on a type that has them
/// (`#[derive(Clone, Copy, Pod, Zeroable, ShmSafe)]`), and needs none of
/// them: bytemuck need not be a dependency of your crate.
///
/// A field whose type comes from another crate and is `bytemuck::Pod` but
/// not `ShmSafe` (a math library's vector, a pixel) is accepted when marked
/// `#[shm(pod)]`. Its fingerprint is its type's name, size and alignment:
/// weaker than a derived one, which also covers every field. To send such a
/// type as a message, wrap it in a `#[repr(transparent)]` struct with one
/// such field.
///
/// # Safety
///
/// Implementing this trait promises that:
///
/// - the type is plain data, as `bytemuck::Pod` means it: every bit pattern
///   is a valid value, there are no padding bytes, and it is `Copy` and
///   `'static`;
/// - a value copied bit for bit into another process means the same thing
///   there: the type holds no address, file descriptor, or other
///   process-local handle;
/// - [`SCHEMA`](Self::SCHEMA) changes whenever the layout changes (field
///   order, names, offsets, types, size or alignment) and depends on nothing
///   else, in particular not on the module path or crate name.
///
/// # Examples
///
/// ```
/// use shmchan::ShmSafe;
///
/// #[derive(Clone, Copy, ShmSafe)]
/// #[repr(C)]
/// struct Tick {
///     ts: u64,
///     px: f64,
///     qty: u32,
///     side: u32,
/// }
///
/// assert_eq!(Tick::NAME, "Tick");
/// assert_eq!(Tick::LAYOUT, "Tick{ts:u64@0,px:f64@8,qty:u32@16,side:u32@20}");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent through shared memory",
    label = "`{Self}` is not `ShmSafe`",
    note = "messages may hold integers, floats, arrays of them, structs that \
            `#[derive(ShmSafe)]`, and, as fields marked `#[shm(pod)]`, other crates' \
            `bytemuck::Pod` types; not references, pointers, `Box`, `Vec`, `String`, \
            `bool`, `char` or enums, whose values mean nothing in another process or \
            have invalid bit patterns"
)]
pub unsafe trait ShmSafe: Copy + 'static {
    /// Stable 64-bit fingerprint of the type's layout.
    const SCHEMA: u64;
    /// The type's own identifier (`Tick`, `[u64; 4]`), not its module path.
    const NAME: &'static str;
    /// Compact layout text, e.g. `Tick{ts:u64@0,px:f64@8,qty:u32@16,side:u32@20}`.
    const LAYOUT: &'static str;
}

macro_rules! primitive {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: a primitive integer or float is `Pod`, holds no address and
        // its fingerprint is derived from its name, size and alignment only.
        unsafe impl ShmSafe for $t {
            const SCHEMA: u64 = SchemaHasher::new()
                .str("primitive")
                .str(stringify!($t))
                .usize(core::mem::size_of::<$t>())
                .usize(core::mem::align_of::<$t>())
                .finish();
            const NAME: &'static str = stringify!($t);
            const LAYOUT: &'static str = stringify!($t);
        }
    )*};
}

primitive!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64);

/// Holds the generated texts of `[T; N]`; an associated const of a generic
/// type is the one place where stable Rust lets a `&'static` point at a value
/// computed from generic parameters.
struct ArrayText<T, const N: usize>(PhantomData<T>);

impl<T: ShmSafe, const N: usize> ArrayText<T, N> {
    const NAME: &'static ConstStr<TEXT_CAP> = &ConstStr::new()
        .push("[")
        .push(T::NAME)
        .push("; ")
        .push_usize(N)
        .push("]");
    const LAYOUT: &'static ConstStr<TEXT_CAP> = &ConstStr::new()
        .push("[")
        .push(T::LAYOUT)
        .push("; ")
        .push_usize(N)
        .push("]");
}

// SAFETY: an array of plain-data elements is plain data (arrays have no
// padding between elements, and a `ShmSafe` element has none inside), holds
// no address because its elements hold none, and its fingerprint covers the
// element's fingerprint and the length.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {
    const SCHEMA: u64 = SchemaHasher::new()
        .str("array")
        .u64(T::SCHEMA)
        .usize(N)
        .finish();
    const NAME: &'static str = ArrayText::<T, N>::NAME.as_str();
    const LAYOUT: &'static str = ArrayText::<T, N>::LAYOUT.as_str();
}

/// The bytes of `value`, as they travel through a channel: for tools that
/// carry messages without knowing their type (the Zenoh bridge).
pub fn bytes_of<T: ShmSafe>(value: &T) -> &[u8] {
    // SAFETY: a `ShmSafe` type has no padding (its contract), so all
    // `size_of::<T>()` bytes of `value` are initialized; the slice borrows
    // `value` and so cannot outlive it.
    unsafe { core::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// The value whose bytes are `bytes` (as [`bytes_of`] gives them), or
/// `None` if `bytes` is not exactly `size_of::<T>()` long. Any alignment.
pub fn from_bytes<T: ShmSafe>(bytes: &[u8]) -> Option<T> {
    if bytes.len() != size_of::<T>() {
        return None;
    }
    // SAFETY: `bytes` holds exactly `size_of::<T>()` initialized bytes, read
    // without assuming alignment; every bit pattern is a valid `T` (the
    // `ShmSafe` contract).
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// A value of all zero bytes.
#[cfg(any(test, loom))]
pub(crate) fn zeroed<T: ShmSafe>() -> T {
    // SAFETY: every bit pattern, all zeros included, is a valid `T`: the
    // `ShmSafe` contract.
    unsafe { core::mem::zeroed() }
}

/// The fingerprint of a field marked `#[shm(pod)]`: a `bytemuck::Pod` type
/// of another crate, known by its name (as written, without its path),
/// size and alignment.
#[doc(hidden)]
pub const fn pod_schema(name: &str, size: usize, align: usize) -> u64 {
    SchemaHasher::new()
        .str("pod")
        .str(name)
        .usize(size)
        .usize(align)
        .finish()
}

/// Proves, at compile time, that a field marked `#[shm(pod)]` is
/// `bytemuck::Pod`.
#[doc(hidden)]
pub const fn assert_pod<T: bytemuck::Pod>() {}

/// Capacity of a generated name or layout text; longer texts end in `...`.
pub const TEXT_CAP: usize = 1024;

/// FNV-1a over a sequence of tagged items, usable in `const` context.
///
/// Strings are hashed with their length first, so `("ab", "c")` and
/// `("a", "bc")` differ.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct SchemaHasher(u64);

impl SchemaHasher {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A hasher with nothing written yet.
    pub const fn new() -> Self {
        Self(Self::OFFSET)
    }

    const fn bytes(mut self, bytes: &[u8]) -> Self {
        let mut i = 0;
        while i < bytes.len() {
            self.0 ^= bytes[i] as u64;
            self.0 = self.0.wrapping_mul(Self::PRIME);
            i += 1;
        }
        self
    }

    /// Writes a 64-bit number, little-endian whatever the host.
    pub const fn u64(self, n: u64) -> Self {
        self.bytes(&n.to_le_bytes())
    }

    /// Writes a size or offset as a 64-bit number.
    pub const fn usize(self, n: usize) -> Self {
        self.u64(n as u64)
    }

    /// Writes a string, length first.
    pub const fn str(self, s: &str) -> Self {
        self.usize(s.len()).bytes(s.as_bytes())
    }

    /// The fingerprint.
    pub const fn finish(self) -> u64 {
        // One extra avalanche round so that small inputs spread over all bits.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

impl Default for SchemaHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// A string built in `const` context, truncated visibly (ending in `...`)
/// when it would exceed `CAP` bytes.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct ConstStr<const CAP: usize> {
    buf: [u8; CAP],
    len: usize,
    truncated: bool,
}

impl<const CAP: usize> ConstStr<CAP> {
    const ELLIPSIS: &'static [u8] = b"...";

    /// An empty string.
    pub const fn new() -> Self {
        Self {
            buf: [0; CAP],
            len: 0,
            truncated: false,
        }
    }

    /// Appends `s`; on overflow, ends the text with `...` instead.
    pub const fn push(mut self, s: &str) -> Self {
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() && !self.truncated {
            if self.len < CAP {
                self.buf[self.len] = bytes[i];
                self.len += 1;
                i += 1;
            } else {
                self = self.truncate();
            }
        }
        self
    }

    /// Appends `n` in decimal.
    pub const fn push_usize(self, mut n: usize) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let text = match core::str::from_utf8(digits.split_at(start).1) {
            Ok(text) => text,
            Err(_) => panic!("decimal digits are ASCII"),
        };
        self.push(text)
    }

    /// Replaces the end of a full buffer with `...`, cutting back to a
    /// character boundary so the text stays valid UTF-8.
    const fn truncate(mut self) -> Self {
        self.len = CAP.saturating_sub(Self::ELLIPSIS.len());
        while self.len > 0 && self.buf[self.len] & 0b1100_0000 == 0b1000_0000 {
            self.len -= 1;
        }
        let mut i = 0;
        while i < Self::ELLIPSIS.len() && self.len < CAP {
            self.buf[self.len] = Self::ELLIPSIS[i];
            self.len += 1;
            i += 1;
        }
        self.truncated = true;
        self
    }

    /// The text.
    pub const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.buf.split_at(self.len).0) {
            Ok(text) => text,
            Err(_) => panic!("ConstStr holds only whole UTF-8 characters"),
        }
    }
}

impl<const CAP: usize> Default for ConstStr<CAP> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_texts() {
        assert_eq!(u64::NAME, "u64");
        assert_eq!(f32::LAYOUT, "f32");
        assert_ne!(u64::SCHEMA, i64::SCHEMA);
        assert_ne!(u64::SCHEMA, f64::SCHEMA);
    }

    #[test]
    fn array_texts_and_schema() {
        assert_eq!(<[u64; 4]>::NAME, "[u64; 4]");
        assert_eq!(<[[u8; 3]; 10]>::NAME, "[[u8; 3]; 10]");
        assert_ne!(<[u64; 4]>::SCHEMA, <[u64; 5]>::SCHEMA);
        assert_ne!(<[u64; 4]>::SCHEMA, <[i64; 4]>::SCHEMA);
        assert_ne!(<[[u8; 2]; 3]>::SCHEMA, <[[u8; 3]; 2]>::SCHEMA);
    }

    #[test]
    fn hasher_separates_strings() {
        let a = SchemaHasher::new().str("ab").str("c").finish();
        let b = SchemaHasher::new().str("a").str("bc").finish();
        assert_ne!(a, b);
    }

    #[test]
    fn const_str_truncates_visibly() {
        let s = ConstStr::<8>::new().push("abcdefghij");
        assert_eq!(s.as_str(), "abcde...");
        let s = ConstStr::<8>::new().push("abcdefgh");
        assert_eq!(s.as_str(), "abcdefgh");
        let s = ConstStr::<8>::new().push("ab").push_usize(1234);
        assert_eq!(s.as_str(), "ab1234");
        let s = ConstStr::<8>::new().push("aéééé");
        assert!(s.as_str().ends_with("..."), "{}", s.as_str());
        assert_eq!(ConstStr::<8>::new().push_usize(0).as_str(), "0");
    }
}
