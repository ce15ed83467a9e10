//! The `SCHEMA` and `LAYOUT` constants: what a process checks before it
//! trusts the bytes another process wrote.
//!
//! Both are computed from the same facts: the struct's identifier (never its
//! module path), and each field's name, offset and type. `SCHEMA` also
//! covers the size and alignment of the struct and the `SCHEMA` of each
//! field's type, so a change in a nested struct changes the outer one.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use crate::fields::{ident_text, type_text, Field};

/// The expression for `SCHEMA`: `SchemaHasher` fed with `"struct"`, the
/// identifier, size and alignment, then each field's name, offset and
/// fingerprint, in declaration order.
pub(crate) fn schema(ident: &Ident, fields: &[Field]) -> syn::Result<TokenStream> {
    let name = ident_text(ident);
    let fields = fields
        .iter()
        .map(|field| {
            let Field { name, member, .. } = field;
            let fingerprint = field_schema(field)?;
            Ok(quote! {
                .str(#name)
                .usize(::core::mem::offset_of!(#ident, #member))
                .u64(#fingerprint)
            })
        })
        .collect::<syn::Result<Vec<_>>>()?;
    Ok(quote! {
        ::shmchan::__private::SchemaHasher::new()
            .str("struct")
            .str(#name)
            .usize(::core::mem::size_of::<#ident>())
            .usize(::core::mem::align_of::<#ident>())
            #(#fields)*
            .finish()
    })
}

/// A field's type's fingerprint: its `SCHEMA`, or for `#[shm(pod)]` its
/// name, size and alignment.
fn field_schema(field: &Field) -> syn::Result<TokenStream> {
    let ty = field.ty;
    if !field.pod {
        return Ok(quote! { <#ty as ::shmchan::ShmSafe>::SCHEMA });
    }
    let text = type_text(ty)?;
    Ok(quote! {
        ::shmchan::__private::pod_schema(
            #text,
            ::core::mem::size_of::<#ty>(),
            ::core::mem::align_of::<#ty>(),
        )
    })
}

/// The expression for `LAYOUT`, e.g. `Tick{ts:u64@0,px:f64@8}`: each field
/// as `name:TYPE_NAME@offset` (a `#[shm(pod)]` field's type as written,
/// without its path).
///
/// The text is built in a `const` item nested in the expression, because
/// only a constant's value can be borrowed for `'static`. An item cannot
/// name `Self`, hence the struct's identifier.
pub(crate) fn layout(ident: &Ident, fields: &[Field]) -> syn::Result<TokenStream> {
    let open = format!("{}{{", ident_text(ident).value());
    let fields = fields
        .iter()
        .enumerate()
        .map(|(position, field)| {
            let Field {
                name, member, ty, ..
            } = field;
            let label = if position == 0 {
                format!("{name}:")
            } else {
                format!(",{name}:")
            };
            let type_name = if field.pod {
                let text = type_text(ty)?;
                quote! { #text }
            } else {
                quote! { <#ty as ::shmchan::ShmSafe>::NAME }
            };
            Ok(quote! {
                .push(#label)
                .push(#type_name)
                .push("@")
                .push_usize(::core::mem::offset_of!(#ident, #member))
            })
        })
        .collect::<syn::Result<Vec<_>>>()?;
    Ok(quote! {{
        const SHMCHAN_LAYOUT: &::shmchan::__private::ConstStr<{ ::shmchan::__private::TEXT_CAP }> =
            &::shmchan::__private::ConstStr::new()
                .push(#open)
                #(#fields)*
                .push("}");
        SHMCHAN_LAYOUT.as_str()
    }})
}
