"""EditConfig.check_overrides: the one check of per-edit overrides (edit, edit_batch, lr-edit)."""

import pytest

from lredit.config import EditConfig
from lredit.errors import InputError


def test_unknown_override_names_the_valid_keys():
    with pytest.raises(InputError, match=r"unknown edit setting\(s\) \['stepz'\]; EditConfig has \[.*'steps'"):
        EditConfig().check_overrides({"stepz": 3, "seed": 1})


def test_fixed_setting_may_be_repeated_but_not_changed():
    cfg = EditConfig(working_size=64)
    cfg.check_overrides({"working_size": 64, "steps": 3}, fixed=("working_size",), fixed_message="built for {setting}")
    with pytest.raises(InputError, match=r"^working_size=128: built for working_size=64$"):
        cfg.check_overrides({"working_size": 128}, fixed=("working_size",), fixed_message="built for {setting}")
