"""The three modality towers: video (faces), audio (voice), text (words, typed or from Whisper)."""
