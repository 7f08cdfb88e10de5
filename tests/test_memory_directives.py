"""memory/directives.py: the person's directives, parsed with YAML values; malformed ones reported."""

from __future__ import annotations

from memory.directives import Directive, parse_directives

SECTION = """\
<!-- syntax help: these examples are not directives
- pin lr = 0.5
-->
Plain text is ignored.
- pin lr_node_homeo = 1e-3
- pin training.phase2_strategy=rollout
* avoid batch_size >= 32   # too slow
- avoid lr_emb_homeo < 1E-4
- avoid freeze_flag == true
- bound data_aug 100 5000
- try lr_node_homeo = 0.03
- `prefer-parent 12`
- freeze 7
- PIN seed = 77
- pin lr_node_homeo 0.1
- avoid lr ~ 3
- bound data_aug 5000 100
- bound data_aug low high
- explode 3
- freeze seven
- try strategy = [unclosed
"""


def test_directives_and_their_values():
    directives, _ = parse_directives(SECTION, first_line=10, path="m.md")
    assert directives == [
        Directive("pin", key="lr_node_homeo", value=0.001, line=14),
        Directive("pin", key="training.phase2_strategy", value="rollout", line=15),
        Directive("avoid", key="batch_size", op=">=", value=32, line=16),
        Directive("avoid", key="lr_emb_homeo", op="<", value=0.0001, line=17),
        Directive("avoid", key="freeze_flag", op="==", value=True, line=18),
        Directive("bound", key="data_aug", low=100.0, high=5000.0, line=19),
        Directive("try", key="lr_node_homeo", value=0.03, line=20),
        Directive("prefer-parent", node=12, line=21),
        Directive("freeze", node=7, line=22),
        Directive("pin", key="seed", value=77, line=23),
    ]


def test_malformed_directives_are_reported_with_their_line_and_ignored():
    _, problems = parse_directives(SECTION, first_line=10, path="m.md")
    assert [str(problem) for problem in problems] == [
        "m.md:24: directive 'pin lr_node_homeo 0.1' ignored: expected 'pin KEY = VALUE'",
        "m.md:25: directive 'avoid lr ~ 3' ignored: expected 'avoid KEY OP VALUE (OP one of < <= > >= ==)'",
        "m.md:26: directive 'bound data_aug 5000 100' ignored: low 5000 is above high 100",
        "m.md:27: directive 'bound data_aug low high' ignored: bounds must be numbers, got 'low' 'high'",
        "m.md:28: directive 'explode 3' ignored: unknown directive 'explode' "
        "(known: pin, avoid, bound, try, prefer-parent, freeze)",
        "m.md:29: directive 'freeze seven' ignored: expected 'freeze N'",
        "m.md:30: directive 'try strategy = [unclosed' ignored: value is not readable YAML (ParserError)",
    ]


def test_empty_section_has_no_directives():
    assert parse_directives("", 1) == ([], [])
