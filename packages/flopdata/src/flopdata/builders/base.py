"""The builder base class: a TFDS GeneratorBasedBuilder that works offline and without TensorFlow."""

from __future__ import annotations

import json

import tensorflow_datasets as tfds


class OfflineBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of our builders. They download nothing, so there are no URL checksums to look up.

    (TFDS would search for a checksums file beside the module, which needs `importlib_resources` for modules
    outside an installed package.) The options a build used are stored in `info.metadata["build_options"]`
    so `flopdata.build` can refuse to reuse a build made with different options.

    `OPTIONS` names the keyword options a builder accepts (checked by `flopdata.build` before anything is
    written); `EMBEDDED` builders need no user-supplied source, so `flopdata.resolve` builds them on first use.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    OPTIONS: tuple[str, ...] = ("source", "num_examples", "seed")
    EMBEDDED: bool = False
    url_infos = None

    def __init__(self, *, build_options: dict, **kwargs):
        # JSON round trip: the form the options take once read back from metadata.json.
        self.build_options = json.loads(json.dumps(build_options, default=str))
        super().__init__(**kwargs)

    def check_source(self) -> None:
        """Raises (naming the file) when the source cannot be built from; called before anything is written.
        Builders that read their source in ``__init__`` have checked it there."""

    def _metadata(self, **extra) -> tfds.core.MetadataDict:
        return tfds.core.MetadataDict(build_options=self.build_options, **extra)
