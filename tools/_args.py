"""A tool's command line, parsed without importing argparse where argparse would give the same
answer.

Importing argparse costs a tool 13-17 ms of its start on this project's 2-CPU test machine
(argparse imports ``re``, and with it ``enum``, ``functools`` and ``collections``, then
``gettext`` and ``locale``), a third of a warm start. Yet almost every command line a tool meets
is plain: exact option names, each value in the next word (or after ``--name=``), the positional
words in one run. So a tool's parser is *recorded* (:class:`Parser` takes the calls a tool makes
on argparse's parser: ``add_argument``, ``add_mutually_exclusive_group``, ``set_defaults``), and
:meth:`Parser.parse_args` parses a plain command line itself. Anything else is handed to the real
argparse parser, built from the record: ``-h`` and ``--ebpf``, an abbreviated or clustered option
(``--dur``, ``-Tx``), a value glued to a short option (``-p181``), a word starting with ``-``
where a value or positional is due, ``--``, two runs of positionals, a value its type or choices
refuse, two options of one exclusive group, an unknown option. argparse then gives its own
answer, help text and usage errors: it stays the parser of record, and this is only the fast path
to the same result (``tests/test_args.py`` compares the two on every tool's options).

Only the parts of argparse the tools use are recorded; a parser that uses anything else (another
``nargs`` than a positional's ``?``, or ``+`` for the last positional after single ones, a custom
action, an argument group) is handed to argparse whole.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

#: argparse's ``SUPPRESS`` (the same string), usable without importing argparse.
SUPPRESS = "==SUPPRESS=="

#: The actions parsed here, and whether each takes a value.
_ACTIONS = {"store": True, "append": True, "store_true": False, "store_false": False,
            "store_const": False, "count": False}
#: The keywords of ``add_argument`` understood here (any other sends the parser to argparse).
_KEYWORDS = {"action", "type", "default", "dest", "help", "metavar", "choices", "required", "nargs", "const"}


class Declined(Exception):
    """The command line is not one this module parses: argparse will."""


class Namespace:
    """The parsed arguments as attributes, as ``argparse.Namespace`` holds them."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other) if hasattr(other, "__dict__") else NotImplemented

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    def __repr__(self) -> str:
        return "Namespace(%s)" % ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())


class _Argument:
    """One recorded ``add_argument``: its flags, destination, action, default and conversion."""

    def __init__(self, flags: tuple, kwargs: dict, group: int | None, defaults: dict) -> None:
        self.flags = flags
        self.kwargs = kwargs
        self.group = group
        self.positional = bool(flags) and not flags[0].startswith("-")
        action = kwargs.get("action", "store")
        # A custom action class, argparse's "help" and "version", another nargs: argparse only.
        self.special = (not isinstance(action, str) or action not in _ACTIONS or not set(kwargs) <= _KEYWORDS
                        or kwargs.get("nargs") not in ((None, "?", "+") if self.positional else (None,)))
        #: A positional taking one or more words (funcslower's functions): a list.
        self.many = self.positional and kwargs.get("nargs") == "+"
        self.action = action if isinstance(action, str) else "custom"
        self.takes_value = _ACTIONS.get(self.action, True)
        if self.positional:
            self.dest = flags[0]
        else:
            longs = [f for f in flags if f.startswith("--")]
            self.dest = kwargs.get("dest") or (longs or list(flags))[0].lstrip("-").replace("-", "_")
        if "default" in kwargs:
            self.default = kwargs["default"]
        elif self.dest in defaults:
            self.default = defaults[self.dest]
        else:
            self.default = {"store_true": False, "store_false": True}.get(self.action)
        self.required = bool(kwargs.get("required")) or (self.positional and kwargs.get("nargs") in (None, "+"))

    def convert(self, text: str) -> Any:
        """``text`` through the argument's type and choices, as argparse would; any refusal
        declines (argparse then says why)."""
        kind = self.kwargs.get("type")
        try:
            value = text if kind is None else kind(text)
        except Exception:  # noqa: BLE001 - whatever the type raises, argparse reports or re-raises
            raise Declined from None
        choices = self.kwargs.get("choices")
        if choices is not None and value not in choices:
            raise Declined
        return value


class _Group:
    """A recorded mutually exclusive group: its arguments go to the parser with its number."""

    def __init__(self, parser: Parser, number: int) -> None:
        self._parser = parser
        self._number = number

    def add_argument(self, *flags: str, **kwargs: Any) -> None:
        self._parser._add(self._number, flags, kwargs)


class Parser:
    """A tool's argument parser: records what the tool declares, parses plain command lines
    itself, and hands everything else to the argparse parser ``make()`` returns (built once,
    from the record, when first needed). ``error()`` and any other attribute are argparse's."""

    def __init__(self, make: Callable[[], Any], special: Sequence[str] = (), initial: dict | None = None) -> None:
        self._make = make
        self._real: Any = None
        self._record: list = []  # ("add", group, flags, kwargs) | ("group", kwargs) | ("defaults", kwargs)
        self._arguments: list[_Argument] = []
        self._group_required: list[bool] = []
        self._defaults: dict = {}
        self._fast = True
        # Options the real parser has from the start (-h, --ebpf): parsed by argparse only; and
        # the destinations they give the namespace.
        self._special = {"-h", "--help", *special}
        self._initial = dict(initial or {})

    # -- what a tool calls ---------------------------------------------------------------------

    def add_argument(self, *flags: str, **kwargs: Any) -> None:
        self._add(None, flags, kwargs)

    def add_mutually_exclusive_group(self, **kwargs: Any) -> _Group:
        self._record.append(("group", kwargs))
        self._group_required.append(bool(kwargs.get("required")))
        if set(kwargs) - {"required"}:
            self._fast = False
        if self._real is not None:
            self._real_groups.append(self._real.add_mutually_exclusive_group(**kwargs))
        return _Group(self, len(self._group_required) - 1)

    def set_defaults(self, **kwargs: Any) -> None:
        self._record.append(("defaults", kwargs))
        self._defaults.update(kwargs)
        for a in self._arguments:
            if a.dest in kwargs:
                a.default = kwargs[a.dest]
        if self._real is not None:
            self._real.set_defaults(**kwargs)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        """The parsed ``args`` (``sys.argv[1:]`` when None), from the fast path when the
        command line is plain, else from argparse (which may print help or a usage error and
        exit)."""
        if args is None:
            import sys

            args = sys.argv[1:]
        if self._fast and namespace is None:
            try:
                return self._parse(list(args))
            except Declined:
                pass
        return self.real().parse_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        """argparse's usage error (the tool's one-line form), after parsing: exits with 2."""
        self.real().error(message)
        raise AssertionError("unreachable")  # error() exits

    def real(self) -> Any:
        """The argparse parser with everything recorded so far (and what is added later)."""
        if self._real is None:
            real = self._make()
            groups: list = []
            for entry in self._record:
                if entry[0] == "add":
                    _, group, flags, kwargs = entry
                    (real if group is None else groups[group]).add_argument(*flags, **kwargs)
                elif entry[0] == "group":
                    groups.append(real.add_mutually_exclusive_group(**entry[1]))
                else:
                    real.set_defaults(**entry[1])
            self._real, self._real_groups = real, groups
        return self._real

    def __getattr__(self, name: str) -> Any:
        # Anything else argparse offers (format_help, add_argument_group, ...): the real parser's,
        # and from then on argparse parses, since the record no longer tells the whole parser.
        if name.startswith("__"):
            raise AttributeError(name)
        self._fast = False
        return getattr(self.real(), name)

    # -- the record and the fast path ------------------------------------------------------------

    def _add(self, group: int | None, flags: tuple, kwargs: dict) -> None:
        self._record.append(("add", group, flags, kwargs))
        a = _Argument(flags, kwargs, group, self._defaults)
        self._arguments.append(a)
        if a.special:
            self._fast = False  # argparse's alone (its default, its parse) from now on
        # A "+" positional is parsed here only as the last one, after positionals of one word each.
        positionals = [x for x in self._arguments if x.positional]
        if any(x.many for x in positionals) and (positionals[-1] is not next(x for x in positionals if x.many)
                                                 or any(x.kwargs.get("nargs") == "?" for x in positionals)):
            self._fast = False
        if self._real is not None:
            (self._real if group is None else self._real_groups[group]).add_argument(*flags, **kwargs)

    def _parse(self, argv: list[str]) -> Namespace:
        options: dict[str, _Argument] = {}
        for a in self._arguments:
            if not a.positional:
                for f in a.flags:
                    options[f] = a
        positionals = [a for a in self._arguments if a.positional]
        # The namespace starts as argparse's does: each destination's first default, then the
        # parser's defaults.
        ns = dict(self._initial)
        for a in self._arguments:
            if a.dest not in ns and a.default != SUPPRESS:
                ns[a.dest] = a.default
        for dest, default in self._defaults.items():
            ns.setdefault(dest, default)
        given: list[_Argument] = []
        words: list[str] = []
        runs, in_run, i = 0, False, 0
        while i < len(argv):
            word = argv[i]
            i += 1
            if not word.startswith("-"):
                runs += not in_run
                in_run = True
                words.append(word)
                continue
            in_run = False
            # An option: its exact name, or --name=value; anything else is argparse's.
            name, eq, text = word.partition("=") if word.startswith("--") else (word, "", "")
            a = options.get(name)
            if a is None or name in self._special or (eq and not a.takes_value):
                raise Declined
            if a.takes_value:
                if not eq:
                    if i >= len(argv) or argv[i].startswith("-"):
                        raise Declined  # missing, or a word argparse may take for an option
                    text = argv[i]
                    i += 1
                value = a.convert(text)
                if a.action == "append":
                    value = [*(ns.get(a.dest) or ()), value]
            elif a.action == "count":
                value = (ns.get(a.dest) or 0) + 1
            else:
                value = {"store_true": True, "store_false": False}.get(a.action, a.kwargs.get("const"))
            ns[a.dest] = value
            given.append(a)
        # argparse matches the positionals to the first run of words, greedily: one run that
        # they can hold is parsed here, anything else is argparse's to refuse or match.
        many = bool(positionals) and positionals[-1].many
        if runs > 1 or (len(words) > len(positionals) and not many) or (many and len(words) < len(positionals)):
            raise Declined
        for a, word in zip(positionals, words):
            ns[a.dest] = [a.convert(w) for w in words[len(positionals) - 1:]] if a.many else a.convert(word)
            given.append(a)
        for a in self._arguments:
            if a in given:
                continue
            if a.required:
                raise Declined
            # A string default goes through the type, as argparse does (for an option, only
            # while its destination still holds that default).
            if a.positional or ns.get(a.dest) is a.default:
                if isinstance(a.default, str) and a.default != SUPPRESS:
                    ns[a.dest] = a.convert(a.default)
                elif a.positional:
                    ns[a.dest] = a.default
        # Mutually exclusive groups: two members given, or a required group without one.
        for number, required in enumerate(self._group_required):
            members = {id(a) for a in given if a.group == number}
            if len(members) > 1 or (required and not members):
                raise Declined
        return Namespace(**ns)
