//! Thread-local, grow-only scratch buffers (mirrors `axiom_scratch` of `csrc/gemm.c`): the
//! packed panels of the GEMM and the tables / padded images of the convolutions are reused
//! from call to call instead of being allocated every time.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;

/// Scratch memory could not be allocated (reported as `AXIOM_ERR_NOMEM`).
#[derive(Debug)]
pub struct NoMem;

/// Slots: functions that call one another use distinct slots.
pub const SLOT_A: usize = 0; // packed A block / row pointers (driver)
pub const SLOT_B: usize = 1; // packed B block (driver)
pub const SLOT_PAD: usize = 2; // padded input image (conv)
pub const SLOT_ROWS: usize = 3; // gather row table (conv)
pub const SLOT_KOFF: usize = 4; // gather offset table (conv)
pub const SLOT_COLS: usize = 5; // column buffer (conv backward)
pub const SLOT_W: usize = 6; // rearranged weights (conv backward)
pub const SLOT_TAPS: usize = 7; // gather tap table (conv weight gradient)
const SLOTS: usize = 8;

/// 64 bytes, 64-byte aligned: the unit of the buffers (so every buffer is cache-line aligned).
#[repr(align(64))]
struct Line(#[allow(dead_code)] [u8; 64]);

thread_local! {
    static BUFS: UnsafeCell<[Vec<MaybeUninit<Line>>; SLOTS]> =
        const { UnsafeCell::new([const { Vec::new() }; SLOTS]) };
}

/// A 64-byte aligned buffer for `count` elements of `T` (contents unspecified: write before
/// reading), valid until the next call for the same slot on the same thread.
pub fn get<T>(slot: usize, count: usize) -> Result<*mut T, NoMem> {
    let bytes = count.checked_mul(std::mem::size_of::<T>()).ok_or(NoMem)?;
    let lines = bytes.div_ceil(64).max(1);
    BUFS.with(|bufs| {
        // SAFETY: only this function touches the cell, and it does not re-enter itself
        let buf = unsafe { &mut (*bufs.get())[slot] };
        if buf.capacity() < lines {
            *buf = Vec::new(); // free the old one first
                               // head room for the next, slightly larger call
            buf.try_reserve_exact(lines.saturating_add(lines / 4)).map_err(|_| NoMem)?;
        }
        Ok(buf.as_mut_ptr() as *mut T)
    })
}
