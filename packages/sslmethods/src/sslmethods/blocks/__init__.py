"""Building blocks of pre-training methods, importing no other room of the package: losses, heads,
`EncoderWithHead`, backbone configs and closed-form MACs, EMA updates, schedules, CLIP captions and the on-device
view recipes (`augment`, with the per-image ops of `augment_colour` and `augment_geometry`)."""
