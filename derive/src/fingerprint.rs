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

use crate::fields::{ident_text, Field};

/// The expression for `SCHEMA`: `SchemaHasher` fed with `"struct"`, the
/// identifier, size and alignment, then each field's name, offset and
/// `SCHEMA`, in declaration order.
pub(crate) fn schema(ident: &Ident, fields: &[Field]) -> TokenStream {
    let name = ident_text(ident);
    let fields = fields.iter().map(|field| {
        let Field {
            name, member, ty, ..
        } = field;
        quote! {
            .str(#name)
            .usize(::core::mem::offset_of!(#ident, #member))
            .u64(<#ty as ::shmchan::ShmSafe>::SCHEMA)
        }
    });
    quote! {
        ::shmchan::__private::SchemaHasher::new()
            .str("struct")
            .str(#name)
            .usize(::core::mem::size_of::<#ident>())
            .usize(::core::mem::align_of::<#ident>())
            #(#fields)*
            .finish()
    }
}

/// The expression for `LAYOUT`, e.g. `Tick{ts:u64@0,px:f64@8}`: each field
/// as `name:TYPE_NAME@offset`.
///
/// The text is built in a `const` item nested in the expression, because
/// only a constant's value can be borrowed for `'static`. An item cannot
/// name `Self`, hence the struct's identifier.
pub(crate) fn layout(ident: &Ident, fields: &[Field]) -> TokenStream {
    let open = format!("{}{{", ident_text(ident).value());
    let fields = fields.iter().enumerate().map(|(position, field)| {
        let Field {
            name, member, ty, ..
        } = field;
        let label = if position == 0 {
            format!("{name}:")
        } else {
            format!(",{name}:")
        };
        quote! {
            .push(#label)
            .push(<#ty as ::shmchan::ShmSafe>::NAME)
            .push("@")
            .push_usize(::core::mem::offset_of!(#ident, #member))
        }
    });
    quote! {{
        const SHMCHAN_LAYOUT: &::shmchan::__private::ConstStr<{ ::shmchan::__private::TEXT_CAP }> =
            &::shmchan::__private::ConstStr::new()
                .push(#open)
                #(#fields)*
                .push("}");
        SHMCHAN_LAYOUT.as_str()
    }}
}
