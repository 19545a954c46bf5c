-- Rounds of a server form a chain: each names the round that was the server's latest when its plan read
-- who had met whom. Two rounds planned from the same state (a manual run racing a scheduled one, or two
-- processes) would name the same previous round; the unique index lets only the first be stored, so no
-- member is put in two groups by two rounds that did not see each other. 0: the server's first round.
ALTER TABLE match_rounds ADD COLUMN previous_round_id INTEGER NOT NULL DEFAULT 0;

UPDATE match_rounds SET previous_round_id = COALESCE(
    (SELECT MAX(p.id) FROM match_rounds AS p WHERE p.guild_id = match_rounds.guild_id AND p.id < match_rounds.id),
    0);

CREATE UNIQUE INDEX match_rounds_chain ON match_rounds (guild_id, previous_round_id);
