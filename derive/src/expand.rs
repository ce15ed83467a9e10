//! Accepts or rejects the item, then assembles the impls and the checks.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::{Data, DataStruct, DeriveInput, Error, Generics, Ident};

use crate::fields::{self, Field};
use crate::{checks, fingerprint, repr};

/// The derive's output for `input`, or the first reason to reject it.
pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let data = struct_data(input)?;
    reject_generics(&input.generics)?;
    let repr = repr::Repr::parse(&input.attrs, &input.ident)?;
    let fields = fields::collect(&data.fields)?;
    if fields.is_empty() {
        return Err(no_fields(&input.ident));
    }
    let impls = impls(&input.ident, &fields)?;
    let checks = checks::layout(&input.ident, &fields, &repr);
    Ok(quote! {
        #impls
        #checks
    })
}

/// The struct's body; an enum or a union is an error at its keyword and
/// identifier.
fn struct_data(input: &DeriveInput) -> syn::Result<&DataStruct> {
    let ident = &input.ident;
    match &input.data {
        Data::Struct(data) => Ok(data),
        Data::Enum(data) => Err(not_a_struct(data.enum_token, ident, ENUM)),
        Data::Union(data) => Err(not_a_struct(data.union_token, ident, UNION)),
    }
}

const ENUM: &str = "#[derive(ShmSafe)] works on structs only: an enum has bit patterns \
    that are no valid value (any discriminant it does not declare), so it cannot be \
    received as raw bytes; send the discriminant as an integer field instead";

const UNION: &str = "#[derive(ShmSafe)] works on structs only: a union does not say \
    which of its fields holds the value, so its layout can be neither checked nor \
    fingerprinted; use a struct, or a byte array field";

fn not_a_struct(keyword: impl ToTokens, ident: &Ident, why: &str) -> Error {
    Error::new_spanned(quote!(#keyword #ident), why)
}

fn reject_generics(generics: &Generics) -> syn::Result<()> {
    if generics.params.is_empty() {
        return Ok(());
    }
    Err(Error::new_spanned(
        generics,
        "#[derive(ShmSafe)] does not support generic structs (type, lifetime or const \
         parameters): its layout checks and fingerprint are computed for one concrete \
         type; write the struct with concrete field types",
    ))
}

fn no_fields(ident: &Ident) -> Error {
    Error::new_spanned(
        ident,
        format!(
            "`{}` has no fields; a zero-sized message carries nothing, \
             so #[derive(ShmSafe)] rejects it",
            ident.unraw()
        ),
    )
}

/// The `unsafe impl` of `ShmSafe`.
///
/// Its `// SAFETY:` comment is written in the template, for the reader of
/// this macro: comments do not survive into a token stream. It relies on
/// facts that the generated checks (`crate::checks`) and the `repr` test
/// (`crate::repr`) establish; if one fails, the crate does not compile, so
/// the impl never exists for a type that breaks them.
///
/// Nothing of bytemuck's is implemented: a type may derive `bytemuck::Pod`
/// beside `ShmSafe`, or not, and its crate need not depend on bytemuck.
fn impls(ident: &Ident, fields: &[Field]) -> syn::Result<TokenStream> {
    let name = fields::ident_text(ident);
    let schema = fingerprint::schema(ident, fields)?;
    let layout = fingerprint::layout(ident, fields)?;
    Ok(quote! {
        // SAFETY: every bit pattern is a valid value and no byte is padding:
        // every field's type is `ShmSafe` (or, marked `#[shm(pod)]`,
        // `bytemuck::Pod`), both of which promise plain data, and there are
        // no padding bytes between fields nor after the last (checked); the
        // layout is fixed by `repr(C)` or `repr(transparent)` (checked by the
        // macro), and in a packed struct every field is aligned (checked);
        // `Copy + 'static` are supertraits, checked by the compiler. It holds
        // no address or other process-local handle because none of its
        // fields does. `SCHEMA` covers the identifier, size, alignment, and
        // every field's name, offset and fingerprint, and nothing else.
        #[automatically_derived]
        unsafe impl ::shmchan::ShmSafe for #ident {
            const SCHEMA: ::core::primitive::u64 = #schema;
            const NAME: &'static ::core::primitive::str = #name;
            const LAYOUT: &'static ::core::primitive::str = #layout;
        }
    })
}
