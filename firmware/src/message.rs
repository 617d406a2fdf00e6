//! Error text for the host, built without allocating: an error may come from
//! a failed allocation.

use core::fmt;

/// A fixed-capacity message: what does not fit is cut.
pub struct Message {
    bytes: [u8; 256],
    len: usize,
}

/// `format!` into a [`Message`].
#[macro_export]
macro_rules! msg {
    ($($arg:tt)*) => {
        $crate::message::Message::from_fmt(format_args!($($arg)*))
    };
}

impl Message {
    pub fn from_fmt(args: fmt::Arguments<'_>) -> Message {
        let mut m = Message { bytes: [0; 256], len: 0 };
        let _ = fmt::write(&mut m, args); // a cut message is still worth printing
        m
    }

    pub fn as_str(&self) -> &str {
        let bytes = &self.bytes[..self.len];
        // Cut inside a character: print up to where it starts.
        core::str::from_utf8(bytes).unwrap_or_else(|e| core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""))
    }
}

impl fmt::Write for Message {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}
