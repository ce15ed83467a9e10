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
    let fields = fields::collect(&data.fields);
    if fields.is_empty() {
        return Err(no_fields(&input.ident));
    }
    let impls = impls(&input.ident, &fields);
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

/// The three `unsafe impl`s.
///
/// Their `// SAFETY:` comments are written in the template, for the reader
/// of this macro: comments do not survive into a token stream. Each relies
/// on facts that the generated checks (`crate::checks`) and the `repr` test
/// (`crate::repr`) establish; if one fails, the crate does not compile, so
/// these impls never exist for a type that breaks them.
fn impls(ident: &Ident, fields: &[Field]) -> TokenStream {
    let name = fields::ident_text(ident);
    let schema = fingerprint::schema(ident, fields);
    let layout = fingerprint::layout(ident, fields);
    quote! {
        // SAFETY: all-zero bytes are a valid value: every field's type is
        // `ShmSafe`, hence `Pod`, hence `Zeroable`, and there are no padding
        // bytes (checked).
        #[automatically_derived]
        unsafe impl ::shmchan::__private::bytemuck::Zeroable for #ident {}

        // SAFETY: every field's type is `Pod` (checked through `ShmSafe`);
        // the layout is fixed by `repr(C)` or `repr(transparent)` (checked by
        // the macro); there is no padding between fields nor after the last
        // (checked), and in a packed struct every field is aligned (checked);
        // `Copy + 'static` are supertraits, checked by the compiler.
        #[automatically_derived]
        unsafe impl ::shmchan::__private::bytemuck::Pod for #ident {}

        // SAFETY: the struct is `Pod` (above); it holds no address or other
        // process-local handle because none of its fields does (they are
        // `ShmSafe`); `SCHEMA` covers the identifier, size, alignment, and
        // every field's name, offset and `SCHEMA`, and nothing else.
        #[automatically_derived]
        unsafe impl ::shmchan::ShmSafe for #ident {
            const SCHEMA: ::core::primitive::u64 = #schema;
            const NAME: &'static ::core::primitive::str = #name;
            const LAYOUT: &'static ::core::primitive::str = #layout;
        }
    }
}
