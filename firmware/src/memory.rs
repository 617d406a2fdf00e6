//! RAM and flash as the firmware measures them: the linker's symbols, and the
//! stack painted at boot so that its deepest use can be read back.

const PAINT: u32 = 0xA5A5_A5A5;
/// Left unpainted below the stack pointer at boot: the painting function's own frame.
const MARGIN: usize = 256;

extern "C" {
    // cortex-m-rt's linker script (link.x): the top of the stack (the end of RAM), the end
    // of the statics, where .data's initial values sit in flash, .data and .bss.
    static _stack_start: u32;
    static __sheap: u32;
    static __sidata: u32;
    static __sdata: u32;
    static __edata: u32;
    static __sbss: u32;
    static __ebss: u32;
}

fn address(symbol: &u32) -> usize {
    symbol as *const u32 as usize
}

/// Flash bytes of the image: vector table, code, read-only data (the model among it)
/// and .data's initial values. FLASH starts at 0 (memory.x).
pub fn flash_bytes() -> usize {
    // SAFETY: only the linker symbols' addresses are taken, never their contents.
    unsafe { address(&__sidata) + (address(&__edata) - address(&__sdata)) }
}

/// RAM the statics take (.data and .bss).
pub fn static_ram_bytes() -> usize {
    // SAFETY: as above, addresses only.
    unsafe { (address(&__edata) - address(&__sdata)) + (address(&__ebss) - address(&__sbss)) }
}

/// The stack region between the statics and the boot-time stack pointer, painted.
pub struct StackPaint {
    bottom: usize,
    top: usize,
}

impl StackPaint {
    /// Paints every free word below the current stack pointer.
    pub fn paint() -> StackPaint {
        // SAFETY: addresses of linker symbols only.
        let (top, bottom) = unsafe { (address(&_stack_start), address(&__sheap)) };
        let sp = cortex_m::register::msp::read() as usize - MARGIN;
        let mut p = bottom;
        while p < sp {
            // SAFETY: [bottom, sp) is RAM that nothing owns: above the statics, below the live stack.
            unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
            p += 4;
        }
        StackPaint { bottom, top }
    }

    /// Deepest stack use since `paint`, in bytes from the top of RAM.
    pub fn peak(&self) -> usize {
        let mut p = self.bottom;
        // SAFETY: reads the words `paint` wrote, or what the stack wrote over them since.
        while p < self.top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
            p += 4;
        }
        self.top - p
    }
}
