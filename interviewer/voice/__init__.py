"""Voice for the interview: speech in (speech-to-text behind `SpeechToText`), speech out (`TextToSpeech`), the
end-of-turn detector, and audio helpers. The interview itself — plan, questions, assessment — is the same code as
a text interview: a voice answer becomes a text answer once the candidate has seen (and may correct) it."""
