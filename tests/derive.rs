//! `#[derive(ShmSafe)]`: what it generates, and what it refuses to compile.

use shmchan::ShmSafe;

/// With bytemuck's derives beside `ShmSafe`, as a type that already had them
/// gains it.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable, ShmSafe)]
#[repr(C)]
struct Tick {
    ts: u64,
    px: f64,
    qty: u32,
    side: u32,
}

/// Every `tests/ui/pass` program compiles, and every `tests/ui/fail` program
/// fails with the error recorded next to it.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}

#[test]
fn name_and_layout_describe_the_struct() {
    assert_eq!(Tick::NAME, "Tick");
    assert_eq!(
        Tick::LAYOUT,
        "Tick{ts:u64@0,px:f64@8,qty:u32@16,side:u32@20}"
    );
}

#[test]
fn a_type_deriving_bytemuck_beside_shm_safe_is_both() {
    let tick = Tick {
        ts: 1,
        px: 2.5,
        qty: 3,
        side: 4,
    };
    let bytes = bytemuck::bytes_of(&tick);
    assert_eq!(bytes.len(), 24);
    assert_eq!(bytes[..8], 1u64.to_ne_bytes());
    let back: Tick = bytemuck::pod_read_unaligned(bytes);
    assert_eq!(back, tick);
    let zero: Tick = bytemuck::Zeroable::zeroed();
    assert_eq!(
        zero,
        Tick {
            ts: 0,
            px: 0.0,
            qty: 0,
            side: 0
        }
    );
}

mod a {
    #[derive(Clone, Copy, shmchan::ShmSafe)]
    #[repr(C)]
    pub struct Tick {
        pub ts: u64,
        pub px: f64,
        pub qty: u32,
        pub side: u32,
    }
}

mod b {
    #[derive(Clone, Copy, shmchan::ShmSafe)]
    #[repr(C)]
    pub struct Tick {
        pub ts: u64,
        pub px: f64,
        pub qty: u32,
        pub side: u32,
    }
}

#[test]
fn same_definition_same_schema_across_modules() {
    assert_eq!(a::Tick::SCHEMA, b::Tick::SCHEMA);
    assert_eq!(a::Tick::SCHEMA, Tick::SCHEMA);
    assert_eq!(a::Tick::LAYOUT, b::Tick::LAYOUT);
    assert_eq!(a::Tick::NAME, b::Tick::NAME);
}

#[test]
fn schema_is_a_fixed_function_of_the_definition() {
    // A struct defined inside a function is the same message as one at
    // module level: neither the path nor the place of definition counts.
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct Tick {
        ts: u64,
        px: f64,
        qty: u32,
        side: u32,
    }
    assert_eq!(Tick::SCHEMA, a::Tick::SCHEMA);
}

#[test]
fn reordering_fields_changes_schema() {
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct Tick {
        ts: u64,
        px: f64,
        side: u32,
        qty: u32,
    }
    assert_ne!(Tick::SCHEMA, a::Tick::SCHEMA);
    assert_eq!(
        Tick::LAYOUT,
        "Tick{ts:u64@0,px:f64@8,side:u32@16,qty:u32@20}"
    );
}

#[test]
fn renaming_a_field_changes_schema() {
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct Tick {
        ts: u64,
        price: f64,
        qty: u32,
        side: u32,
    }
    assert_ne!(Tick::SCHEMA, a::Tick::SCHEMA);
}

#[test]
fn renaming_the_struct_changes_schema() {
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct Quote {
        ts: u64,
        px: f64,
        qty: u32,
        side: u32,
    }
    assert_ne!(Quote::SCHEMA, a::Tick::SCHEMA);
}

mod float_ts {
    #[derive(Clone, Copy, shmchan::ShmSafe)]
    #[repr(C)]
    pub struct Tick {
        ts: f64,
        px: f64,
        qty: u32,
        side: u32,
    }
}

#[test]
fn retyping_a_field_changes_schema() {
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct Tick {
        ts: u64,
        px: f64,
        qty: i32,
        side: u32,
    }
    assert_ne!(Tick::SCHEMA, a::Tick::SCHEMA);
    assert_eq!(
        Tick::LAYOUT,
        "Tick{ts:u64@0,px:f64@8,qty:i32@16,side:u32@20}"
    );
    assert_ne!(float_ts::Tick::SCHEMA, a::Tick::SCHEMA);
}

#[test]
fn changing_a_nested_struct_changes_the_outer_schema() {
    mod v1 {
        #[derive(Clone, Copy, shmchan::ShmSafe)]
        #[repr(C)]
        pub struct Inner(pub u32);
        #[derive(Clone, Copy, shmchan::ShmSafe)]
        #[repr(C)]
        pub struct Outer {
            pub inner: Inner,
        }
    }
    mod v2 {
        #[derive(Clone, Copy, shmchan::ShmSafe)]
        #[repr(C)]
        pub struct Inner(pub i32);
        #[derive(Clone, Copy, shmchan::ShmSafe)]
        #[repr(C)]
        pub struct Outer {
            pub inner: Inner,
        }
    }
    assert_eq!(v1::Outer::LAYOUT, v2::Outer::LAYOUT);
    assert_ne!(v1::Outer::SCHEMA, v2::Outer::SCHEMA);
}

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Level {
    px: f64,
    qty: u32,
    orders: u32,
}

#[derive(Clone, Copy, ShmSafe)]
#[repr(C)]
struct Book {
    ts: u64,
    ids: [u16; 4],
    bids: [Level; 2],
    asks: [Level; 2],
}

#[test]
fn nested_structs_and_arrays_have_their_offsets() {
    assert_eq!(Level::LAYOUT, "Level{px:f64@0,qty:u32@8,orders:u32@12}");
    assert_eq!(
        Book::LAYOUT,
        "Book{ts:u64@0,ids:[u16; 4]@8,bids:[Level; 2]@16,asks:[Level; 2]@48}"
    );
    assert_eq!(core::mem::offset_of!(Book, asks), 48);
    assert_eq!(core::mem::size_of::<Book>(), 80);
}

#[test]
fn transparent_struct_over_u64() {
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(transparent)]
    struct Seq(u64);
    assert_eq!(Seq::NAME, "Seq");
    assert_eq!(Seq::LAYOUT, "Seq{0:u64@0}");
    assert_ne!(Seq::SCHEMA, u64::SCHEMA);
    assert_eq!(core::mem::size_of::<Seq>(), 8);
}

#[test]
fn tuple_struct_fields_are_named_by_position() {
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct Pair(u32, f32);
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct Named {
        a: u32,
        b: f32,
    }
    assert_eq!(Pair::LAYOUT, "Pair{0:u32@0,1:f32@4}");
    assert_ne!(Pair::SCHEMA, Named::SCHEMA);
}

#[test]
fn raw_identifiers_are_named_without_prefix() {
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct r#Msg {
        r#type: u32,
        r#len: u32,
    }
    assert_eq!(Msg::NAME, "Msg");
    assert_eq!(Msg::LAYOUT, "Msg{type:u32@0,len:u32@4}");
}

#[test]
fn aligned_struct_without_padding() {
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C, align(8))]
    struct Pair {
        a: u32,
        b: u32,
    }
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct Plain {
        a: u32,
        b: u32,
    }
    assert_eq!(core::mem::align_of::<Pair>(), 8);
    assert_eq!(Pair::LAYOUT, "Pair{a:u32@0,b:u32@4}");
    // Same fields, different alignment: a different message.
    assert_ne!(Pair::SCHEMA, Plain::SCHEMA);
}

#[test]
fn long_layout_is_truncated_visibly() {
    #[derive(Clone, Copy, ShmSafe)]
    #[repr(C)]
    struct Wide {
        a_field_with_a_rather_long_name_number_00: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_01: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_02: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_03: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_04: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_05: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_06: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_07: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_08: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_09: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_10: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_11: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_12: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_13: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_14: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_15: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_16: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_17: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_18: [[u8; 1]; 1],
        a_field_with_a_rather_long_name_number_19: [[u8; 1]; 1],
    }
    assert_eq!(Wide::LAYOUT.len(), shmchan::__private::TEXT_CAP);
    assert!(
        Wide::LAYOUT.starts_with("Wide{a_field_with_a_rather_long_name_number_00:[[u8; 1]; 1]@0,")
    );
    assert!(Wide::LAYOUT.ends_with("..."));
}
