//! Instructions executed, counted with SysTick under `qemu -icount shift=0`:
//! there each instruction advances virtual time by 1 ns, and the MPS2 boards
//! clock SysTick from their 25 MHz CPU clock, so one tick is 40 instructions.
//! Without `-icount` the figure is QEMU's own pacing and means little.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;

const RELOAD: u32 = 0x00FF_FFFF;
const INSTRUCTIONS_PER_TICK: u64 = 40;

static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// A free-running SysTick, wrapped into 64 bits.
pub struct Instructions;

impl Instructions {
    pub fn start() -> Instructions {
        // The firmware takes the core peripherals once, here; a second take would be a bug.
        if let Some(mut core) = cortex_m::Peripherals::take() {
            core.SYST.set_clock_source(SystClkSource::Core);
            core.SYST.set_reload(RELOAD);
            core.SYST.clear_current();
            core.SYST.enable_interrupt();
            core.SYST.enable_counter();
        }
        Instructions
    }

    /// Instructions since `start` (to 40).
    pub fn now(&self) -> u64 {
        loop {
            let wraps = WRAPS.load(Ordering::Relaxed);
            let current = SYST::get_current();
            // A wrap between the two reads would pair an old count with a new value: read again.
            if WRAPS.load(Ordering::Relaxed) == wraps {
                let ticks = u64::from(wraps) * (u64::from(RELOAD) + 1) + u64::from(RELOAD - current);
                return ticks * INSTRUCTIONS_PER_TICK;
            }
        }
    }
}

/// Per-inference counts: the smallest, the largest and the sum.
#[derive(Default)]
pub struct Stats {
    count: u64,
    min: u64,
    max: u64,
    sum: u64,
}

impl Stats {
    pub fn add(&mut self, instructions: u64) {
        self.min = if self.count == 0 { instructions } else { self.min.min(instructions) };
        self.max = self.max.max(instructions);
        self.sum += instructions;
        self.count += 1;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mean = self.sum / self.count.max(1);
        write!(f, "min {} mean {} max {}", self.min, mean, self.max)
    }
}
