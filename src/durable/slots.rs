//! The commit slots as a writer keeps them (spec §4): the current one and where it lives.

use crate::error::Result;
use crate::format::header::Slot;
use crate::storage::Storage;

/// The writer's view of the commit slots: the current one and where it lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlotState {
    pub current: Slot,
    pub current_index: usize,
}

impl SlotState {
    /// Writes `next` (with the next generation) over the older slot.
    pub fn commit(&mut self, storage: &mut dyn Storage, next: Slot) -> Result<()> {
        let next = Slot { generation: self.current.generation + 1, ..next };
        let index = 1 - self.current_index;
        storage.write_at(Slot::offset_of(index), &next.encode())?;
        self.current = next;
        self.current_index = index;
        Ok(())
    }
}
