-- V1: the call archive. Every event of a centre's Redis stream `callq:{C}:events`, as it
-- came (events), and what `callq archive` derives from them: one row per call (calls), one
-- per offer (offers), one per agent status or presence change (agent_changes). Times are
-- Redis' clock (the stream entry id's milliseconds), stored as timestamptz.

CREATE TABLE events (
    centre      text        NOT NULL,
    id          text        NOT NULL,             -- stream entry id, e.g. 1764512345678-0
    type        text        NOT NULL,             -- enqueue, offer, connected, completed, ...
    at          timestamptz NOT NULL,             -- the entry id's milliseconds
    call_sid    text,
    agent       text,
    queue       text,
    fields      jsonb       NOT NULL,             -- every name/value pair but `type`, as text
    archived_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (centre, id)
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_call ON events (call_sid) WHERE call_sid IS NOT NULL;

CREATE TABLE calls (
    centre         text NOT NULL,
    sid            text NOT NULL,
    queue          text,                           -- the last queue (after transfers)
    kind           text,                           -- inbound | callback
    from_number    text,                           -- the caller's full number (read once from Redis)
    to_number      text,
    entered_at     timestamptz,
    offered_at     timestamptz,                    -- first offer
    answered_at    timestamptz,
    ended_at       timestamptz,
    outcome        text,                           -- completed | abandoned | overflowed | callback_failed
    end_reason     text,
    agent          text,                           -- the agent who answered
    attempts       integer NOT NULL DEFAULT 0,     -- offers made
    answer_attempt integer,                        -- the offer that was answered
    wait_s         double precision,               -- entered -> answered, or -> left the line
    talk_s         double precision,               -- answered -> completed
    recording_sid  text,
    -- the stream position (ms * 10^10 + seq) of the event that last set outcome/ended_at,
    -- and queue: an older event written late (taken over from a dead consumer) does not undo
    -- a newer one
    outcome_pos    numeric,
    queue_pos      numeric,
    PRIMARY KEY (centre, sid)
);
CREATE INDEX calls_entered ON calls (entered_at);
CREATE INDEX calls_queue ON calls (queue, entered_at);

CREATE TABLE offers (
    centre     text        NOT NULL,
    call_sid   text        NOT NULL,
    attempt    integer     NOT NULL,
    agent      text        NOT NULL,
    queue      text,
    offered_at timestamptz NOT NULL,
    result     text,                               -- answered | no-answer | busy | failed | canceled | overflowed
    result_at  timestamptz,
    PRIMARY KEY (centre, call_sid, attempt)
);
CREATE INDEX offers_agent ON offers (agent, offered_at);

CREATE TABLE agent_changes (
    centre   text        NOT NULL,
    event_id text        NOT NULL,
    agent    text        NOT NULL,
    kind     text        NOT NULL,                 -- status | presence
    status   text        NOT NULL,                 -- status: available, busy, offline, ...; presence: registered | unregistered
    reason   text,
    at       timestamptz NOT NULL,
    PRIMARY KEY (centre, event_id)
);
CREATE INDEX agent_changes_agent ON agent_changes (centre, agent, at);
