"""Flags generated from a spec dataclass: every field a flag with its type, default and help; comma lists for
tuples, --x/--no-x for bools, "none" for optional fields; errors name the flag; spec -> flags -> the same spec."""

from __future__ import annotations

import dataclasses

import flopcli
import pytest


@dataclasses.dataclass(frozen=True)
class Toy:
    name: str = dataclasses.field(default="a", metadata={"help": "a name"})
    steps: int | None = dataclasses.field(default=None, metadata={"help": "steps", "type": flopcli.positive_int})
    epochs: float | None = dataclasses.field(default=None, metadata={"help": "epochs"})
    rates: tuple[float, ...] = dataclasses.field(default=(0.1, 0.2),
                                                 metadata={"help": "rates", "type": flopcli.positive_float})
    width: int = dataclasses.field(default=8, metadata={"help": "width of 100% of it"})
    groups: int = dataclasses.field(default=4, metadata={"help": "groups"})
    verbose: bool = dataclasses.field(default=False, metadata={"help": "talk more"})

    def validate(self) -> None:
        if self.width % self.groups:
            raise ValueError(f"groups={self.groups} does not divide width={self.width}")


def _parser(**kw) -> flopcli.ArgumentParser:
    parser = flopcli.ArgumentParser(prog="toy")
    flopcli.add_spec_flags(parser, Toy, base=Toy(), **kw)
    return parser


def _spec(argv, base=Toy(), **kw) -> Toy:
    return flopcli.spec_from_flags(Toy, _parser(**kw).parse_args(argv), base=base)


def test_given_flags_replace_the_base_and_the_rest_keep_it():
    assert _spec([]) == Toy()
    assert _spec([], base=Toy(width=12, groups=3)) == Toy(width=12, groups=3)
    spec = _spec(["--name", "b", "--steps", "3", "--rates", "1e-3, 2", "--width", "6", "--groups", "3",
                  "--verbose"])
    assert spec == Toy(name="b", steps=3, rates=(1e-3, 2.0), width=6, groups=3, verbose=True)
    assert _spec(["--rates", "5"]).rates == (5.0,)
    assert _spec(["--verbose", "--no-verbose"]).verbose is False
    assert _spec(["--steps", "4", "--steps", "none"]).steps is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--steps", "0"], "argument --steps: expected an integer >= 1, got '0'"),
    (["--rates", "1,-2"], "argument --rates: expected a number > 0, got '-2'"),
    (["--rates", "1,,2"], "argument --rates: expected a comma-separated list, got '1,,2'"),
    (["--epochs", "nan"], "argument --epochs: expected a number or 'none', got 'nan'"),
    (["--width", "x"], "argument --width: expected an integer, got 'x'"),
    (["--width", "none"], "argument --width: expected an integer, got 'none'"),
    (["--steps", "2", "--epochs", "1"], "argument --epochs: not allowed with argument --steps"),
    (["--name", "c"], "argument --name: invalid choice: 'c' (choose from 'a', 'b')"),
    (["--width", "6"], "--groups: groups=4 does not divide width=6"),
])
def test_errors_are_one_line_naming_the_flag(capsys, argv, message):
    parser = _parser(exclusive=[("steps", "epochs")], choices={"name": ["a", "b"]})

    def body(args):
        flopcli.spec_from_flags(Toy, args, base=Toy())

    assert flopcli.run(parser, body, argv) == flopcli.EXIT_USAGE
    assert capsys.readouterr().err == f"error: {message}\n"


def test_help_lists_every_field_with_its_default_aliases_and_notes():
    text = _parser(aliases={"rates": ["--lr"]}, notes={"width": "default: the data's"},
                   required=["name"]).format_help()
    for flag in ("--name", "--steps", "--epochs", "--rates", "--lr", "--width", "--groups", "--verbose",
                 "--no-verbose"):
        assert flag in text
    flat = " ".join(text.split())
    assert "rates (default: 0.1,0.2)" in flat and "steps (default: none)" in flat
    assert "width of 100% of it (default: the data's)" in flat and "talk more (default: False)" in flat
    assert "a name (default" not in flat  # a required flag has no default
    with pytest.raises(Exception, match="the following arguments are required: --name"):
        _parser(required=["name"]).parse_args([])


def test_spec_to_flags_rebuilds_the_spec_whatever_the_base():
    spec = Toy(name="b", steps=None, epochs=2.5, rates=(1e-5, 0.3), width=9, groups=3, verbose=True)
    flags = flopcli.spec_to_flags(spec)
    assert flags[:6] == ["--name", "b", "--steps", "none", "--epochs", "2.5"] and flags[-1] == "--verbose"
    assert _spec(flags, base=Toy(name="a", rates=(9.0,), verbose=False)) == spec
    assert "--no-verbose" in flopcli.spec_to_flags(Toy())
    assert "--steps" not in flopcli.spec_to_flags(spec, skip=["steps"])


def test_a_field_without_help_or_an_unknown_name_is_a_programming_error():
    @dataclasses.dataclass(frozen=True)
    class Bare:
        x: int = 1

        def validate(self) -> None:
            pass

    with pytest.raises(TypeError, match=r"Bare.x has no help text"):
        flopcli.add_spec_flags(flopcli.ArgumentParser(), Bare, base=Bare())
    with pytest.raises(TypeError, match="'size' is not a field of Toy"):
        _parser(aliases={"size": ["--s"]})


@dataclasses.dataclass(frozen=True)
class Words:
    items: tuple[str, ...] = flopcli.spec_field((), "items, one word each", metavar="ITEM", nargs="+")
    size: int = flopcli.spec_field(2, "a size", flopcli.positive_int)

    def validate(self) -> None:
        if any("=" not in item for item in self.items):
            raise ValueError(f"items {[i for i in self.items if '=' not in i][0]!r}: expected key=value")


def test_a_nargs_field_takes_one_word_per_item_and_an_error_may_name_the_item(capsys):
    parser = flopcli.ArgumentParser(prog="words")
    flopcli.add_spec_flags(parser, Words, base=Words())
    spec = flopcli.spec_from_flags(Words, parser.parse_args(["--items", "a=(1, 2)", "b=x,y", "--size", "3"]),
                                   base=Words())
    assert spec == Words(items=("a=(1, 2)", "b=x,y"), size=3)  # commas stay inside an item
    assert flopcli.spec_to_flags(spec) == ["--items", "a=(1, 2)", "b=x,y", "--size", "3"]
    assert flopcli.spec_to_flags(Words()) == ["--size", "2"]  # no items: no flag (the default is empty)
    with pytest.raises(flopcli.CommandError, match=r"^--items 'nope': expected key=value$"):
        flopcli.spec_from_flags(Words, parser.parse_args(["--items", "a=1", "nope"]), base=Words())
    assert "--items ITEM [ITEM ...]" in parser.format_help()
