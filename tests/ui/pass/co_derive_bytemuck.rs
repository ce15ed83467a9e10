//! A type that already derives bytemuck's `Pod` and `Zeroable` gains
//! `ShmSafe` by adding it to the same list: no conflicting impls, and it
//! crosses a channel.
use shmchan::ShmSafe;

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable, ShmSafe)]
#[repr(C)]
struct Tick {
    ts: u64,
    px: f64,
}

fn main() {
    let tick = Tick { ts: 1, px: 2.5 };
    assert_eq!(bytemuck::bytes_of(&tick).len(), 16);
    assert_eq!(Tick::LAYOUT, "Tick{ts:u64@0,px:f64@8}");
    let name = format!("ui-co-derive-{}", std::process::id());
    let (tx, rx) = shmchan::spsc::channel::<Tick>(&name, 4).unwrap();
    tx.send(tick).unwrap();
    assert_eq!(rx.recv(), Ok(tick));
}
