//! Ensembles: the mean of several models' class probabilities, in one call,
//! sharing one arena sized for the largest member. No heap allocation per call.

use alloc::vec::Vec;

use crate::engine::softmax_in_place;
use crate::engine::Model;
use crate::error::{Error, Result};

/// Models that read the same input and give the same number of classes.
#[derive(Debug, Clone)]
pub struct Ensemble<B = Vec<u8>> {
    members: Vec<Model<B>>,
}

/// Logits of one member are parked at the arena's tail, behind the members' own space.
const TAIL_ALIGN: usize = 16;

impl<B: AsRef<[u8]>> Ensemble<B> {
    pub fn new(members: Vec<Model<B>>) -> Result<Self> {
        let Some(first) = members.first() else {
            return Err(Error::EnsembleMismatch { member: 0, reason: "an ensemble needs at least one model" });
        };
        let (shape, classes) = (first.input_shape(), first.output_len());
        for (i, m) in members.iter().enumerate().skip(1) {
            if m.input_shape() != shape {
                return Err(Error::EnsembleMismatch {
                    member: i,
                    reason: "its input shape differs from the first model's",
                });
            }
            if m.output_len() != classes {
                return Err(Error::EnsembleMismatch {
                    member: i,
                    reason: "its class count differs from the first model's",
                });
            }
        }
        Ok(Ensemble { members })
    }

    pub fn members(&self) -> &[Model<B>] {
        &self.members
    }

    pub fn input_len(&self) -> usize {
        self.members[0].input_len()
    }

    pub fn output_len(&self) -> usize {
        self.members[0].output_len()
    }

    fn member_arena_bytes(&self) -> usize {
        let max = self.members.iter().map(|m| m.arena_bytes()).max().unwrap_or(0);
        max.div_ceil(TAIL_ALIGN) * TAIL_ALIGN
    }

    /// The largest member's arena plus room for one member's probabilities.
    pub fn arena_bytes(&self) -> usize {
        self.member_arena_bytes() + self.output_len() * 4 + TAIL_ALIGN
    }

    /// Mean class probabilities of the members.
    pub fn predict(&self, arena: &mut [u8], pixels: &[u8], probabilities: &mut [f32]) -> Result<()> {
        if arena.len() < self.arena_bytes() {
            return Err(Error::ArenaTooSmall { needed: self.arena_bytes(), found: arena.len() });
        }
        if probabilities.len() != self.output_len() {
            return Err(Error::OutputLength { expected: self.output_len(), found: probabilities.len() });
        }
        let (member_arena, tail) = arena.split_at_mut(self.member_arena_bytes());
        let skip = tail.as_ptr().align_offset(4).min(tail.len());
        let scratch: &mut [f32] = bytemuck::try_cast_slice_mut(&mut tail[skip..][..self.output_len() * 4])
            .map_err(|_| Error::Internal("ensemble scratch misaligned"))?;
        probabilities.fill(0.0);
        for member in &self.members {
            member.run(member_arena, pixels, scratch)?;
            softmax_in_place(scratch);
            for (p, s) in probabilities.iter_mut().zip(scratch.iter()) {
                *p += s;
            }
        }
        let n = self.members.len() as f32;
        for p in probabilities.iter_mut() {
            *p /= n;
        }
        Ok(())
    }
}
