//! `#[derive(ShmSafe)]`: the derive macro behind `shmchan::ShmSafe`.
//!
//! Use it through `shmchan`, which re-exports it next to the trait; this
//! crate is an implementation detail. The entry point below only converts
//! token streams; the work happens in its sibling modules:
//!
//! - `expand`: accepts or rejects the item and assembles the output;
//! - `repr`: reads the `#[repr(..)]` attributes;
//! - `fields`: the struct's fields, named the way the fingerprint names them;
//! - `fingerprint`: the `SCHEMA` and `LAYOUT` expressions;
//! - `checks`: the layout facts, as `const` assertions that fail to compile.

mod checks;
mod expand;
mod fields;
mod fingerprint;
mod repr;

use proc_macro::TokenStream;

/// Implements `shmchan::ShmSafe` for a struct whose values can be copied,
/// bit for bit, into another process.
///
/// # What it generates
///
/// For
///
/// ```text
/// #[derive(Clone, Copy, ShmSafe)]
/// #[repr(C)]
/// struct Tick { ts: u64, px: f64, qty: u32, side: u32 }
/// ```
///
/// the derive emits
///
/// - `unsafe impl shmchan::ShmSafe` (which needs `Copy`: derive `Clone` and
///   `Copy` next to it), with
///   - `NAME = "Tick"`: the struct's identifier, without its module path;
///   - `LAYOUT = "Tick{ts:u64@0,px:f64@8,qty:u32@16,side:u32@20}"`: each
///     field's name, the `NAME` of its type, and its offset;
///   - `SCHEMA`: a 64-bit fingerprint, computed at compile time, of the
///     identifier, the size, the alignment, and each field's name, offset
///     and `SCHEMA`. The module path is not part of it, so two programs that
///     define the same struct in differently named modules or crates agree;
/// - `const` assertions that stop the compilation, pointing at the field or
///   attribute at fault, unless the layout holds what the `unsafe impl`
///   promises.
///
/// Nothing of bytemuck's: a type that derives `bytemuck::Pod` and
/// `bytemuck::Zeroable` can derive `ShmSafe` beside them, and one that
/// derives `ShmSafe` alone needs no bytemuck dependency.
///
/// # Fields of other crates' `Pod` types
///
/// A field whose type is another crate's `bytemuck::Pod` type but not
/// `ShmSafe` (a math library's vector, an image crate's pixel) is accepted
/// when marked `#[shm(pod)]`. The derive then checks that it is `Pod`, and
/// fingerprints it by its type's name as written (without the path: `Vec3`,
/// `Point3<f32>`), its size and its alignment, which is weaker than a
/// derived fingerprint: two such types of the same name and size match.
///
/// ```text
/// #[derive(Clone, Copy, ShmSafe)]
/// #[repr(C)]
/// struct Pose { t: u64, #[shm(pod)] at: glam::Vec3, #[shm(pod)] look: glam::Vec3 }
/// ```
///
/// Fields of a tuple struct are named `0`, `1`, ... in `LAYOUT` and
/// `SCHEMA`.
///
/// # What it rejects
///
/// - an enum (it has bit patterns that are no valid value) or a union (it
///   does not say which of its fields holds the value);
/// - a struct without `#[repr(C)]` or `#[repr(transparent)]`: the layout of
///   a `repr(Rust)` struct may differ between two compilations.
///   `#[repr(C, align(N))]` is accepted, and so are `#[repr(C, packed)]` and
///   `#[repr(C, packed(N))]` when every field stays aligned;
/// - a generic struct (type, lifetime or const parameters);
/// - a struct with no fields, or of size zero: such a message carries
///   nothing;
/// - a field whose type is not `ShmSafe`: references, raw pointers, `Box`,
///   `Vec`, `String`, `bool`, `char`, enums, function pointers, and structs
///   that do not derive `ShmSafe`;
/// - padding, between two fields or after the last one: padding bytes are
///   uninitialized, so they can be neither copied as data nor compared.
///   Add an explicit field such as `_pad: [u8; 4]`, or reorder the fields.
///
/// # Examples
///
/// A nested struct, and array fields. (A proc-macro crate cannot run its own
/// doc tests: this example is the test
/// `nested_structs_and_arrays_have_their_offsets` in `shmchan`'s
/// `tests/derive.rs`, and `shmchan::ShmSafe`'s documentation has a runnable
/// one.)
///
/// ```text
/// use shmchan::ShmSafe;
///
/// #[derive(Clone, Copy, ShmSafe)]
/// #[repr(C)]
/// struct Level { px: f64, qty: u32, orders: u32 }
///
/// #[derive(Clone, Copy, ShmSafe)]
/// #[repr(C)]
/// struct Book { ts: u64, ids: [u16; 4], bids: [Level; 2], asks: [Level; 2] }
///
/// assert_eq!(Level::LAYOUT, "Level{px:f64@0,qty:u32@8,orders:u32@12}");
/// assert_eq!(
///     Book::LAYOUT,
///     "Book{ts:u64@0,ids:[u16; 4]@8,bids:[Level; 2]@16,asks:[Level; 2]@48}"
/// );
/// ```
#[proc_macro_derive(ShmSafe, attributes(shm))]
pub fn derive_shm_safe(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
