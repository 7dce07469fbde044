"""Laws fitted to the results table's curves and how far they are trusted: score-vs-FLOPs laws (`curve_laws`),
power laws with bootstrap intervals (`scaling`), held-out extrapolation checks (`extrapolation`), crossovers
(`crossover`), Abnar et al.'s saturation (`saturation`) and upstream loss per backbone family (`upstream`)."""
