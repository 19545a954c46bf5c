-- A prompt an admin added (/prompts add) may carry the other language too, as the essays do: then its posts get
-- a language button. `language`: the one it was written in, read from its text ('en' or 'ja'; NULL for a prompt
-- added before, read from its text when needed). `translation`: JSON {"title", "summary", "questions"} in the
-- other language, as the admin typed them; NULL until given.
ALTER TABLE prompt_custom ADD COLUMN language TEXT;
ALTER TABLE prompt_custom ADD COLUMN translation TEXT;
