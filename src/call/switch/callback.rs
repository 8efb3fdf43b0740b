//! A callback the caller asked for in the dialplan (a `callback` node): kept in the call record.

use std::time::Instant;

use super::Switch;
use crate::call::caller::CallId;
use crate::tickets::record::Callback;

impl Switch {
    /// The caller confirmed `number` to be called back on.
    pub(super) fn note_callback(&mut self, now: Instant, id: CallId, number: String) {
        let requested = self.utc(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.record.callback = Some(Callback { number, requested });
        self.save_progress(id);
    }
}
