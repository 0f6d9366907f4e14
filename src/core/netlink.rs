//! Netlink's framing (linux/netlink.h): a message is a 16-byte header and a
//! payload padded to 4 bytes; an attribute is a 4-byte header (length,
//! type) and a value padded to 4. Pure bytes in, bytes out: the sockets are
//! the callers'. Every length read from the kernel is checked against the
//! bytes actually there, so a short or lying reply ends the walk instead of
//! reading past it.

/// An error, or with a zero code the acknowledgement of a request.
pub const NLMSG_ERROR: u16 = 2;
/// The end of a multi-part reply.
pub const NLMSG_DONE: u16 = 3;
/// Every message to the kernel carries it.
pub const NLM_F_REQUEST: u16 = 0x1;
/// Ask for an acknowledgement (an `NLMSG_ERROR` with code 0) on success.
pub const NLM_F_ACK: u16 = 0x4;
/// Create what a "new" message names if it does not exist.
pub const NLM_F_CREATE: u16 = 0x400;
/// Marks an attribute whose value is itself attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
/// The bits of an attribute's type that are flags, not the type.
const NLA_TYPE_FLAGS: u16 = 0xc000;

/// The message header's size.
pub const HEADER_LEN: usize = 16;

/// `len` rounded up to netlink's 4-byte alignment.
pub fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Netlink messages written one after another into one buffer (one
/// `send`), each begun with [`Writer::begin`] and closed with
/// [`Writer::end`], which fills in the lengths.
#[derive(Debug, Default)]
pub struct Writer {
    /// The messages so far.
    buf: Vec<u8>,
    /// Where the open message starts.
    message: usize,
    /// Where each open nested attribute starts, innermost last.
    nests: Vec<usize>,
}

impl Writer {
    /// Starts a message of `kind` with `flags` and sequence number `seq`.
    pub fn begin(&mut self, kind: u16, flags: u16, seq: u32) {
        debug_assert!(self.nests.is_empty(), "a nested attribute left open");
        self.message = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        // The port id: 0 is the kernel's to fill in.
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
    }

    /// Appends a fixed header of the family (e.g. `nfgenmsg`), padded.
    pub fn header(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pad();
    }

    /// Appends an attribute of `kind` holding `value`.
    pub fn attr(&mut self, kind: u16, value: &[u8]) {
        let len = u16::try_from(4 + value.len()).expect("a netlink attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
    }

    /// Appends a string attribute, NUL-terminated as the kernel's
    /// `NLA_STRING` policies and libmnl's `mnl_attr_put_strz` have it.
    pub fn attr_str(&mut self, kind: u16, value: &str) {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.attr(kind, &bytes);
    }

    /// Opens a nested attribute of `kind`; close it with [`Writer::nest_end`].
    pub fn nest_begin(&mut self, kind: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    /// Closes the innermost nested attribute.
    pub fn nest_end(&mut self) {
        let start = self.nests.pop().expect("nest_end after nest_begin");
        let len = u16::try_from(self.buf.len() - start).expect("a nested attribute under 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Closes the message begun last.
    pub fn end(&mut self) {
        debug_assert!(self.nests.is_empty(), "a nested attribute left open");
        let len = u32::try_from(self.buf.len() - self.message).expect("a message under 4 GiB");
        self.buf[self.message..self.message + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// The messages written, ready to send.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn pad(&mut self) {
        self.buf.resize(align(self.buf.len()), 0);
    }
}

/// One message of a buffer the kernel sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The message type (`NLMSG_ERROR`, or the family's own).
    pub kind: u16,
    /// The sequence number of the request it answers.
    pub seq: u32,
    /// What follows the header, within the message's length.
    pub payload: &'a [u8],
}

impl Message<'_> {
    /// For an `NLMSG_ERROR` message: 0 for an acknowledgement, else the
    /// negated errno. `None` for other messages or a truncated one.
    pub fn error(&self) -> Option<i32> {
        if self.kind != NLMSG_ERROR {
            return None;
        }
        let code = self.payload.get(..4)?;
        Some(i32::from_ne_bytes(code.try_into().ok()?))
    }
}

/// The messages of one read; stops at the first one whose length does not
/// fit in what was read.
pub fn messages(mut data: &[u8]) -> impl Iterator<Item = Message<'_>> {
    std::iter::from_fn(move || {
        if data.len() < HEADER_LEN {
            return None;
        }
        let len = u32::from_ne_bytes(data[0..4].try_into().ok()?) as usize;
        if len < HEADER_LEN || len > data.len() {
            data = &[];
            return None;
        }
        let message = Message {
            kind: u16::from_ne_bytes([data[4], data[5]]),
            seq: u32::from_ne_bytes(data[8..12].try_into().ok()?),
            payload: &data[HEADER_LEN..len],
        };
        data = &data[align(len).min(data.len())..];
        Some(message)
    })
}

/// The attributes in `data` as (type without its flag bits, value); stops
/// at the first one whose length does not fit.
pub fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        if len < 4 || len > data.len() {
            data = &[];
            return None;
        }
        let kind = u16::from_ne_bytes([data[2], data[3]]) & !NLA_TYPE_FLAGS;
        let value = &data[4..len];
        data = &data[align(len).min(data.len())..];
        Some((kind, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_message_has_its_lengths_and_padding_and_reads_back() {
        let mut w = Writer::default();
        w.begin(0x0a0c, NLM_F_REQUEST | NLM_F_ACK, 7);
        w.header(&[2, 0, 0, 0]);
        w.attr_str(1, "knockr");
        w.nest_begin(3);
        w.attr(1, &[10, 0, 0, 2]);
        w.nest_end();
        w.end();
        let bytes = w.into_bytes();
        // header 16 + nfgenmsg 4 + "knockr\0" 4+7 -> 12 + nest 4 + attr 8.
        assert_eq!(bytes.len(), 16 + 4 + 12 + 12);
        assert_eq!(u32::from_ne_bytes(bytes[0..4].try_into().unwrap()), 44);
        // The string is padded with zeros after its NUL.
        assert_eq!(&bytes[24..32], b"knockr\0\0");
        let all: Vec<Message> = messages(&bytes).collect();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].kind, all[0].seq), (0x0a0c, 7));
        let found: Vec<_> = attrs(&all[0].payload[4..]).collect();
        assert_eq!(found[0], (1, &b"knockr\0"[..]));
        // The nested flag is set on the wire and masked when read.
        assert_eq!(u16::from_ne_bytes([bytes[34], bytes[35]]), 3 | NLA_F_NESTED);
        assert_eq!(found[1].0, 3);
        assert_eq!(
            attrs(found[1].1).collect::<Vec<_>>(),
            [(1, &[10, 0, 0, 2][..])]
        );
    }

    #[test]
    fn lengths_that_lie_end_the_walk_instead_of_reading_past_the_buffer() {
        let mut w = Writer::default();
        w.begin(NLMSG_ERROR, 0, 1);
        w.header(&(-2i32).to_ne_bytes());
        w.end();
        let mut bytes = w.into_bytes();
        assert_eq!(messages(&bytes).next().unwrap().error(), Some(-2));
        // A length past the end, then one shorter than a header.
        bytes[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(messages(&bytes).count(), 0);
        bytes[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(messages(&bytes).count(), 0);
        assert_eq!(attrs(&[200, 0, 1, 0, 1, 2]).count(), 0);
        assert_eq!(attrs(&[2, 0, 1, 0]).count(), 0);
    }
}
