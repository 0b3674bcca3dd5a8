"""Every front end checks overrides with EditConfig.check_overrides: a misspelled key is an
InputError naming the valid keys (edit, edit_batch's planning, lr-edit's bundle geometry check)."""

import pytest

from lredit.engine.core.batch import EditRequest, plan
from lredit.engine.runtimes.bundle_loader import check_bundle_geometry
from lredit.errors import InputError


def test_edit_refuses_a_misspelled_override_before_any_work(reference, photo):
    calls = []
    sessions = {g: _Counting(s, calls) for g, s in reference.sessions.items()}
    pipe = reference.with_sessions(sessions)
    with pytest.raises(InputError, match=r"unknown edit setting\(s\) \['stepz'\].*'steps'"):
        pipe.edit(photo, "a cat", stepz=3)
    assert calls == []
    assert pipe.sessions is not reference.sessions and reference.sessions["unet"] is not sessions["unet"]


def test_batch_planning_and_the_bundle_geometry_check_give_the_same_error(reference, photo):
    groups, failures = plan(reference, [EditRequest(photo, "a cat", overrides={"ancors": 2})])
    assert groups == [] and isinstance(failures[0], InputError) and "unknown edit setting(s) ['ancors']" in str(failures[0])
    with pytest.raises(InputError, match=r"unknown edit setting\(s\) \['working_sise'\]"):
        check_bundle_geometry(reference.config, {"working_sise": 128})
    with pytest.raises(InputError, match="this bundle was exported for working_size="):
        check_bundle_geometry(reference.config, {"working_size": reference.config.working_size + 8})


class _Counting:
    def __init__(self, session, calls):
        self.session, self.calls = session, calls
        self.input_names, self.output_names = session.input_names, session.output_names

    def run(self, feeds):
        self.calls.append(1)
        return self.session.run(feeds)
