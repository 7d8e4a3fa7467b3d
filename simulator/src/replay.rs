//! Replaying a capture: direction of each frame, connection tracking, evaluation.

use crate::capture::Captured;
use crate::conntrack::Conntrack;
use crate::eval::{evaluate_traced, Context, CtView, Decider, Outcome, Verdict};
use crate::frame::Frame;
use crate::index::ProgramIndex;
use nwf_compiler::program::Provenance;
use nwf_compiler::program::{Program, Way};

/// Where a frame's direction came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaySource {
    /// Recorded in the capture (pcapng flags, SLL packet type).
    Capture,
    /// Given with `--direction`.
    Option,
    /// Guessed from the binding's MAC (spoofed frames defeat it).
    Inferred,
}

/// The result for one frame.
#[derive(Clone, Debug)]
pub struct FrameResult<'p> {
    /// The decoded frame.
    pub frame: Frame,
    /// Its direction.
    pub way: Way,
    /// Where the direction came from.
    pub way_source: WaySource,
    /// Verdict and deciding rule.
    pub outcome: Outcome<'p>,
    /// The connection-tracking view the IP layer used, if it looked.
    pub ct: Option<CtView>,
}

/// Replays frames through one program, keeping connection state.
pub struct Replayer<'p> {
    program: &'p Program,
    conntrack: Conntrack,
    context: Context,
    direction: Option<Way>,
    index: ProgramIndex,
    track: bool,
}

impl<'p> Replayer<'p> {
    /// A replayer; `direction` is used for frames whose capture does not record one.
    pub fn new(program: &'p Program, direction: Option<Way>, context: Context) -> Replayer<'p> {
        Self::with_tracking(program, direction, context, true)
    }

    /// Whether any IP-layer rule of the program depends on connection state.
    pub fn program_is_stateful(program: &Program) -> bool {
        Way::BOTH.iter().any(|w| {
            program
                .ip(*w)
                .iter()
                .any(|r| r.state.is_some() || r.connlimit_above.is_some())
        })
    }

    /// A replayer that tracks connections only if `always_track` or the program needs it
    /// (tracking is the costliest part of a replay; its views are also reported per frame).
    pub fn with_tracking(
        program: &'p Program,
        direction: Option<Way>,
        context: Context,
        always_track: bool,
    ) -> Replayer<'p> {
        let uses_connlimit = Way::BOTH
            .iter()
            .any(|w| program.ip(*w).iter().any(|r| r.connlimit_above.is_some()));
        let conntrack = if uses_connlimit {
            Conntrack::with_source_counts()
        } else {
            Conntrack::new()
        };
        Replayer {
            program,
            conntrack,
            context,
            direction,
            index: ProgramIndex::new(program),
            track: always_track || Self::program_is_stateful(program),
        }
    }

    /// Number of tracked connections.
    pub fn connections(&self) -> usize {
        self.conntrack.len()
    }

    /// Evaluates one captured frame.
    pub fn step(&mut self, c: &Captured) -> FrameResult<'p> {
        self.step_traced(c, &mut |_| {})
    }

    /// Evaluates one captured frame, calling `on_hit` for every rule that matches it.
    pub fn step_traced(
        &mut self,
        c: &Captured,
        on_hit: &mut dyn FnMut(&'p Provenance),
    ) -> FrameResult<'p> {
        let frame = Frame::decode_with(&c.data, self.track);
        self.step_decoded(c, frame, on_hit)
    }

    /// Whether frames for this replayer must be decoded with checksum verification (see
    /// [`Frame::decode_with`]); needed to decode frames on another thread.
    pub fn verifies_checksums(&self) -> bool {
        self.track
    }

    /// Evaluates a captured frame that was already decoded (with
    /// `Frame::decode_with(&c.data, self.verifies_checksums())`).
    pub fn step_decoded(
        &mut self,
        c: &Captured,
        frame: Frame,
        on_hit: &mut dyn FnMut(&'p Provenance),
    ) -> FrameResult<'p> {
        let (way, way_source) = match (c.way, self.direction) {
            (Some(w), _) => (w, WaySource::Capture),
            (None, Some(w)) => (w, WaySource::Option),
            (None, None) => (
                if frame.src == self.program.mac {
                    Way::FromVm
                } else {
                    Way::ToVm
                },
                WaySource::Inferred,
            ),
        };
        let looked = if self.track {
            self.conntrack.lookup(&frame, c.time)
        } else {
            None
        };
        self.context.ct = looked.map(|(v, _)| v);
        let outcome = evaluate_traced(
            self.program,
            Some(&self.index),
            way,
            &frame,
            &self.context,
            on_hit,
        );
        let ct = if outcome.ip_layer_seen {
            self.context.ct
        } else {
            None
        };
        // Conntrack sees an IP frame unless the bridge dropped it first (bad header) or, from
        // the VM, the ethernet layer (nat PREROUTING runs before conntrack) dropped it.
        let seen = match outcome.layer {
            Decider::Kernel => false,
            Decider::Ethernet => way == Way::ToVm || outcome.verdict == Verdict::Accept,
            Decider::Ip | Decider::Default => true,
        };
        if let (Some((_, pending)), true) = (looked, seen) {
            self.conntrack
                .settle(pending, outcome.verdict == Verdict::Accept);
        }
        FrameResult {
            frame,
            way,
            way_source,
            outcome,
            ct,
        }
    }
}
