# fuzz target (filled below)
