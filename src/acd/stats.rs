//! Statistics of the call distribution, computed from its events.
