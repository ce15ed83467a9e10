use proc_macro::TokenStream; #[proc_macro_derive(ShmSafe)] pub fn d(_i: TokenStream)->TokenStream{TokenStream::new()}
