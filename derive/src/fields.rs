//! The struct's fields, as the fingerprint and the checks see them.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Fields, Ident, Index, LitStr, Member, Type};

/// One field of the struct.
pub(crate) struct Field<'a> {
    /// The name that `SCHEMA`, `LAYOUT` and error messages use: the
    /// identifier without `r#`, or the position (`0`, `1`, ...) in a tuple
    /// struct.
    pub(crate) name: String,
    /// How `offset_of!` names the field.
    pub(crate) member: Member,
    /// The field's type.
    pub(crate) ty: &'a Type,
    /// Where errors about the field's placement point: its identifier, or
    /// its type in a tuple struct.
    pub(crate) span: Span,
}

/// The fields of a struct in declaration order, which `repr(C)` keeps in
/// memory.
pub(crate) fn collect(fields: &Fields) -> Vec<Field<'_>> {
    fields
        .iter()
        .enumerate()
        .map(|(position, field)| match &field.ident {
            Some(ident) => Field {
                name: ident.unraw().to_string(),
                member: Member::Named(ident.clone()),
                ty: &field.ty,
                span: ident.span(),
            },
            None => Field {
                name: position.to_string(),
                member: Member::Unnamed(Index::from(position)),
                ty: &field.ty,
                span: field.ty.span(),
            },
        })
        .collect()
}

/// `ident` as a string literal, without `r#`.
pub(crate) fn ident_text(ident: &Ident) -> LitStr {
    LitStr::new(&ident.unraw().to_string(), ident.span())
}
