"""Follow MsgSeqNum (34) per FIX session (SenderCompID → TargetCompID): gaps, possible duplicates, resets.

Rules, for each valid message in log order:

- the first message of a session sets where it starts; then each message should carry the next number;
- a higher number is a **gap** (the missing messages are counted; the first ``max_gaps`` are listed with byte
  and line): the messages lost may have been market data, so the decoder flags the book (see ``decode``);
- a lower number with PossDupFlag (43) = Y is a **possible duplicate** (a resend): dropped, counted;
- a lower number without it is counted as ``backwards`` and kept (a restarted session that reset its numbers
  without a Logon in this log, e.g. two days' logs concatenated);
- Logon (A) with ResetSeqNumFlag (141) = Y restarts the count at its own number; SequenceReset (4) sets the
  next expected number to NewSeqNo (36), gap fill or reset.
"""

from nodes.marketdata.fix.validate import FixMessage

OK, GAP, DUPLICATE, BACKWARDS = "ok", "gap", "duplicate", "backwards"


class SequenceTracker:
    """Check each message's MsgSeqNum against its session; counts go into ``sessions`` (the report's dict)."""

    def __init__(self, sessions: dict, max_gaps: int = 20):
        self.sessions = sessions
        self.max_gaps = max_gaps
        self._expected: dict[str, int] = {}

    def see(self, message: FixMessage) -> str:
        """Return ``ok``, ``gap``, ``duplicate`` (drop it) or ``backwards`` for ``message``."""
        header = message.header
        key = f"{header.get('49', '')}->{header.get('56', '')}"
        seq = int(header["34"])
        stats = self.sessions.get(key)
        if stats is None:
            stats = self.sessions[key] = {"messages": 0, "first_seq": seq, "last_seq": seq, "gaps": 0, "missing": 0,
                                          "gap_list": [], "duplicates_dropped": 0, "backwards": 0, "resets": 0}
        stats["messages"] += 1
        expected = self._expected.get(key)
        outcome = OK
        if message.msg_type == "A" and message.body.get("141") == "Y":
            stats["resets"] += 1
        elif expected is not None and seq > expected:
            outcome = GAP
            stats["gaps"] += 1
            stats["missing"] += seq - expected
            if len(stats["gap_list"]) < self.max_gaps:
                stats["gap_list"].append({"expected": expected, "got": seq, "byte": message.frame.offset,
                                          "line": message.frame.line})
        elif expected is not None and seq < expected:
            if header.get("43") == "Y":
                stats["duplicates_dropped"] += 1
                return DUPLICATE
            outcome = BACKWARDS
            stats["backwards"] += 1
        stats["last_seq"] = seq
        self._expected[key] = seq + 1
        if message.msg_type == "4" and "36" in message.body:
            self._expected[key] = int(message.body["36"])
            stats["resets"] += message.body.get("123") != "Y"
        return outcome
