//! The struct's fields, as the fingerprint and the checks see them.

use proc_macro2::Span;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Error, Fields, Ident, Index, LitStr, Member, Type};

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
    /// Marked `#[shm(pod)]`: a `bytemuck::Pod` type of another crate, not
    /// `ShmSafe`, known by its name, size and alignment.
    pub(crate) pod: bool,
}

/// The fields of a struct in declaration order, which `repr(C)` keeps in
/// memory; an `#[shm(..)]` attribute other than `#[shm(pod)]` is an error.
pub(crate) fn collect(fields: &Fields) -> syn::Result<Vec<Field<'_>>> {
    fields
        .iter()
        .enumerate()
        .map(|(position, field)| {
            let pod = pod_attribute(&field.attrs)?;
            Ok(match &field.ident {
                Some(ident) => Field {
                    name: ident.unraw().to_string(),
                    member: Member::Named(ident.clone()),
                    ty: &field.ty,
                    span: ident.span(),
                    pod,
                },
                None => Field {
                    name: position.to_string(),
                    member: Member::Unnamed(Index::from(position)),
                    ty: &field.ty,
                    span: field.ty.span(),
                    pod,
                },
            })
        })
        .collect()
}

/// Whether the field's attributes include `#[shm(pod)]`.
fn pod_attribute(attrs: &[syn::Attribute]) -> syn::Result<bool> {
    let mut pod = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("shm")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("pod") {
                pod = true;
                Ok(())
            } else {
                Err(meta.error(
                    "unknown #[shm(..)] option; the one option is #[shm(pod)], for a field \
                     whose type is another crate's bytemuck::Pod type",
                ))
            }
        })?;
    }
    Ok(pod)
}

/// The name a `#[shm(pod)]` field's type goes by in `SCHEMA` and `LAYOUT`:
/// its last path segment with its generic arguments (`Vec3`,
/// `Point3<f32>`), so that the module path is not part of it.
pub(crate) fn type_text(ty: &Type) -> syn::Result<String> {
    let text = match ty {
        Type::Path(path) if path.qself.is_none() => {
            let last = path
                .path
                .segments
                .last()
                .ok_or_else(|| Error::new_spanned(ty, "#[shm(pod)] needs a named type"))?;
            let mut text = last.ident.unraw().to_string();
            text.push_str(&last.arguments.to_token_stream().to_string());
            text
        }
        other => other.to_token_stream().to_string(),
    };
    Ok(text.chars().filter(|c| !c.is_whitespace()).collect())
}

/// `ident` as a string literal, without `r#`.
pub(crate) fn ident_text(ident: &Ident) -> LitStr {
    LitStr::new(&ident.unraw().to_string(), ident.span())
}
