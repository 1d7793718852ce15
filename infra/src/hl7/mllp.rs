//! MLLP framing (HL7's Minimal Lower Layer Protocol): each message between
//! a start block (0x0B) and an end block (0x1C 0x0D). Bytes before a start
//! block are skipped; a frame longer than the limit is an error, so a
//! sender that never ends a frame cannot fill Baton's memory.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

const START: u8 = 0x0B;
const END: [u8; 2] = [0x1C, 0x0D];

/// The largest message Baton reads (an ADT message is a few kilobytes).
pub const MAX_FRAME: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MllpError {
    #[error("an MLLP frame longer than {MAX_FRAME} bytes")]
    TooLong,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Default)]
pub struct MllpCodec;

impl Decoder for MllpCodec {
    type Item = BytesMut;
    type Error = MllpError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, MllpError> {
        match src.iter().position(|b| *b == START) {
            Some(start) => src.advance(start),
            None => {
                src.clear();
                return Ok(None);
            }
        }
        match src.windows(2).position(|w| w == END) {
            Some(end) => {
                let mut frame = src.split_to(end + 2);
                frame.advance(1);
                frame.truncate(end - 1);
                Ok(Some(frame))
            }
            None if src.len() > MAX_FRAME + 3 => Err(MllpError::TooLong),
            None => Ok(None),
        }
    }
}

impl Encoder<&[u8]> for MllpCodec {
    type Error = MllpError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), MllpError> {
        dst.reserve(item.len() + 3);
        dst.put_u8(START);
        dst.put_slice(item);
        dst.put_slice(&END);
        Ok(())
    }
}
