//! The layout facts that the `unsafe impl`s rely on, as generated `const`
//! assertions.
//!
//! The macro sees tokens, not types: it cannot know a field's size or
//! whether its type implements a trait. So it writes each fact down as an
//! item that the compiler evaluates, spanned at the field concerned, so
//! that a broken fact fails the build with an error that points there.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::Ident;

use crate::fields::Field;
use crate::repr::Repr;

/// Every check for the struct `ident` with `fields` (at least one).
pub(crate) fn layout(ident: &Ident, fields: &[Field], repr: &Repr) -> TokenStream {
    let shm_safe = fields.iter().map(field_is_shm_safe);
    let gaps = fields
        .windows(2)
        .map(|pair| no_padding_between(ident, &pair[0], &pair[1]));
    let tail = fields.last().map(|last| no_trailing_padding(ident, last));
    let aligned: Vec<TokenStream> = if repr.packed {
        fields
            .iter()
            .map(|field| aligned_in_packed(ident, field))
            .collect()
    } else {
        Vec::new()
    };
    let sized = not_zero_sized(ident);
    quote! {
        #(#shm_safe)*
        #(#gaps)*
        #tail
        #(#aligned)*
        #sized
    }
}

/// The field's type implements `ShmSafe`; the error underlines the type.
///
/// Naming `<Field as ShmSafe>::SCHEMA` compiles only if the impl exists. It
/// is the same expression that the fingerprint uses, with the same span, so
/// the compiler reports one error per field rather than one per use.
fn field_is_shm_safe(field: &Field) -> TokenStream {
    let ty = field.ty;
    if field.pod {
        // A `#[shm(pod)]` field: `bytemuck::Pod` instead.
        return quote_spanned! {ty.span()=>
            const _: () = ::shmchan::__private::assert_pod::<#ty>();
        };
    }
    quote_spanned! {ty.span()=>
        const _: ::core::primitive::u64 = <#ty as ::shmchan::ShmSafe>::SCHEMA;
    }
}

/// `next` starts where `prev` ends.
fn no_padding_between(ident: &Ident, prev: &Field, next: &Field) -> TokenStream {
    let (prev_member, prev_ty, next_member) = (&prev.member, prev.ty, &next.member);
    let message = format!(
        "`{}` has padding before field `{}`: padding bytes are uninitialized and \
         cannot be sent; add an explicit padding field or reorder the fields",
        ident.unraw(),
        next.name
    );
    quote_spanned! {next.span=>
        const _: () = ::core::assert!(
            ::core::mem::offset_of!(#ident, #next_member)
                == ::core::mem::offset_of!(#ident, #prev_member) + ::core::mem::size_of::<#prev_ty>(),
            #message
        );
    }
}

/// The struct ends where its last field ends.
fn no_trailing_padding(ident: &Ident, last: &Field) -> TokenStream {
    let (member, ty) = (&last.member, last.ty);
    let message = format!(
        "`{}` has trailing padding after field `{}`: padding bytes are uninitialized \
         and cannot be sent; add an explicit padding field at the end or reorder the fields",
        ident.unraw(),
        last.name
    );
    quote_spanned! {last.span=>
        const _: () = ::core::assert!(
            ::core::mem::size_of::<#ident>()
                == ::core::mem::offset_of!(#ident, #member) + ::core::mem::size_of::<#ty>(),
            #message
        );
    }
}

/// In a packed struct, the field is aligned wherever a value of the struct
/// is: its type's alignment divides both its offset and the struct's
/// alignment.
fn aligned_in_packed(ident: &Ident, field: &Field) -> TokenStream {
    let (member, ty) = (&field.member, field.ty);
    let message = format!(
        "field `{}` is unaligned in a packed struct: its type's alignment must divide both \
         its offset and the alignment of `{}`; reorder the fields, use packed(N) \
         with a larger N, or remove packed",
        field.name,
        ident.unraw()
    );
    quote_spanned! {field.span=>
        const _: () = ::core::assert!(
            ::core::mem::offset_of!(#ident, #member) % ::core::mem::align_of::<#ty>() == 0
                && ::core::mem::align_of::<#ident>() % ::core::mem::align_of::<#ty>() == 0,
            #message
        );
    }
}

/// Fields that are all zero-sized (`[u8; 0]`) make a message of no bytes.
fn not_zero_sized(ident: &Ident) -> TokenStream {
    let message = format!(
        "`{}` is zero-sized; a zero-sized message carries nothing",
        ident.unraw()
    );
    quote_spanned! {ident.span()=>
        const _: () = ::core::assert!(::core::mem::size_of::<#ident>() != 0, #message);
    }
}
