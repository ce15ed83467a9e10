//! Reads the `#[repr(..)]` attributes of the struct.
//!
//! The derive needs a layout that the language fixes, the same in every
//! compilation: `repr(C)` or `repr(transparent)`. Modifiers that keep it
//! fixed (`align(N)`, `packed`, `packed(N)`) are accepted; whether they leave
//! padding or unaligned fields is checked by the generated assertions.

use syn::parse::ParseStream;
use syn::{token, Attribute, Error, Ident};

const NOT_FIXED: &str = "#[derive(ShmSafe)] needs #[repr(C)] or #[repr(transparent)]: \
    the layout of a repr(Rust) struct can differ between two compilations";

/// What the struct's `#[repr(..)]` attributes mean to the derive.
pub(crate) struct Repr {
    /// `packed` or `packed(N)` is present, so a field may sit at an offset
    /// that its type's alignment does not divide.
    pub(crate) packed: bool,
}

impl Repr {
    /// Reads every `#[repr(..)]` in `attrs`. Without `C` or `transparent`,
    /// the error points at the first `#[repr]`, or at `ident` if there is
    /// none.
    pub(crate) fn parse(attrs: &[Attribute], ident: &Ident) -> syn::Result<Self> {
        let mut fixed = false;
        let mut packed = false;
        let reprs: Vec<&Attribute> = attrs.iter().filter(|a| a.path().is_ident("repr")).collect();
        for attr in &reprs {
            attr.parse_nested_meta(|meta| {
                let hint = &meta.path;
                fixed |= hint.is_ident("C") || hint.is_ident("transparent");
                packed |= hint.is_ident("packed");
                skip_arguments(meta.input)
            })?;
        }
        match (fixed, reprs.first()) {
            (true, _) => Ok(Self { packed }),
            (false, Some(attr)) => Err(Error::new_spanned(attr, NOT_FIXED)),
            (false, None) => Err(Error::new_spanned(ident, NOT_FIXED)),
        }
    }
}

/// Steps over the `(N)` of `align(N)` or `packed(N)`. The compiler validates
/// the arguments; the derive only needs to know which hints are present.
fn skip_arguments(input: ParseStream) -> syn::Result<()> {
    if input.peek(token::Paren) {
        input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}
