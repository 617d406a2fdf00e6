//! The host's files and command line through Arm semihosting (QEMU
//! `-semihosting-config enable=on,target=native`).

use core::fmt;

use cortex_m_semihosting::nr;

/// A semihosting call failed; `errno` is the host's (SYS_ERRNO).
#[derive(Debug, Clone, Copy)]
pub enum HostError {
    Open {
        errno: usize,
    },
    Read {
        errno: usize,
    },
    /// The file ended `missing` bytes early.
    ShortRead {
        missing: usize,
    },
    Write {
        errno: usize,
    },
    Length {
        errno: usize,
    },
    /// A file name too long for the firmware's buffer.
    TooLong,
    /// SYS_GET_CMDLINE failed (a command line longer than the buffer, for one).
    CommandLine,
    NotUtf8,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Open { errno } => write!(f, "cannot open (host errno {errno})"),
            HostError::Read { errno } => write!(f, "cannot read (host errno {errno})"),
            HostError::ShortRead { missing } => write!(f, "ends {missing} bytes early"),
            HostError::Write { errno } => write!(f, "cannot write (host errno {errno})"),
            HostError::Length { errno } => write!(f, "cannot tell its length (host errno {errno})"),
            HostError::TooLong => write!(f, "name too long"),
            HostError::CommandLine => write!(f, "the host gave no command line (or one longer than the buffer)"),
            HostError::NotUtf8 => write!(f, "not UTF-8"),
        }
    }
}

fn errno() -> usize {
    // SAFETY: SYS_ERRNO takes no argument block.
    unsafe { cortex_m_semihosting::syscall1(nr::ERRNO, 0) }
}

/// The command line QEMU was given (`arg=` words, joined by spaces).
pub fn command_line(buffer: &mut [u8]) -> Result<&str, HostError> {
    let mut block = [buffer.as_mut_ptr() as usize, buffer.len()];
    // SAFETY: the block names `buffer` and its length; the host writes at most that many bytes.
    let status = unsafe { cortex_m_semihosting::syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
    if status != 0 {
        return Err(HostError::CommandLine);
    }
    let len = block[1].min(buffer.len());
    core::str::from_utf8(&buffer[..len]).map_err(|_| HostError::NotUtf8)
}

#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Read,
    Write,
}

/// An open host file, closed on drop.
pub struct HostFile {
    handle: usize,
}

impl HostFile {
    pub fn open(path: &str, mode: Mode) -> Result<HostFile, HostError> {
        // SYS_OPEN wants a NUL-terminated name.
        let mut name = [0u8; 256];
        name.get_mut(..path.len()).ok_or(HostError::TooLong)?.copy_from_slice(path.as_bytes());
        if path.len() == name.len() {
            return Err(HostError::TooLong);
        }
        let mode = match mode {
            Mode::Read => nr::open::R_BINARY,
            Mode::Write => nr::open::W_TRUNC_BINARY,
        };
        let block = [name.as_ptr() as usize, mode, path.len()];
        // SAFETY: the block names a NUL-terminated string that outlives the call.
        let handle = unsafe { cortex_m_semihosting::syscall(nr::OPEN, &block) };
        if handle == usize::MAX {
            return Err(HostError::Open { errno: errno() });
        }
        Ok(HostFile { handle })
    }

    pub fn byte_len(&self) -> Result<usize, HostError> {
        // SAFETY: SYS_FLEN takes the handle only.
        let len = unsafe { cortex_m_semihosting::syscall(nr::FLEN, &[self.handle]) };
        if len == usize::MAX {
            return Err(HostError::Length { errno: errno() });
        }
        Ok(len)
    }

    pub fn read_exact(&self, buffer: &mut [u8]) -> Result<(), HostError> {
        let block = [self.handle, buffer.as_mut_ptr() as usize, buffer.len()];
        // SAFETY: the host writes at most `buffer.len()` bytes into `buffer`. It returns the bytes NOT read.
        let missing = unsafe { cortex_m_semihosting::syscall(nr::READ, &block) };
        match missing {
            0 => Ok(()),
            m if m > buffer.len() => Err(HostError::Read { errno: errno() }),
            m => Err(HostError::ShortRead { missing: m }),
        }
    }

    pub fn write_all(&self, bytes: &[u8]) -> Result<(), HostError> {
        let block = [self.handle, bytes.as_ptr() as usize, bytes.len()];
        // SAFETY: the host reads `bytes.len()` bytes from `bytes`. It returns the bytes NOT written.
        let unwritten = unsafe { cortex_m_semihosting::syscall(nr::WRITE, &block) };
        if unwritten != 0 {
            return Err(HostError::Write { errno: errno() });
        }
        Ok(())
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        // SAFETY: SYS_CLOSE takes the handle only; a failure to close leaves nothing to do.
        unsafe { cortex_m_semihosting::syscall(nr::CLOSE, &[self.handle]) };
    }
}
