"""Group membership comes from Slack through a cache; when Slack cannot say, groups grant nothing."""

from slack_sdk import WebClient

from bot.directory import Directory
from controlplane.policy import is_included
from slacklocal import SlackWebAPI

TOKEN = "xoxb-directory-test"


def directory_for(api: SlackWebAPI) -> Directory:
    directory = Directory(WebClient(token=TOKEN, base_url=api.base_url), groups={"S0DBAS"})
    directory.refresh()
    return directory


def test_groups_are_loaded_and_checked_from_the_cache() -> None:
    with SlackWebAPI(TOKEN, usergroups={"S0DBAS": ["U0CAROL"]}) as api:
        directory = directory_for(api)
        calls = len(api.calls_to("usergroups.users.list"))
        assert is_included("U0CAROL", ["S0DBAS"], directory.members_of)
        assert not is_included("U0BOB", ["S0DBAS"], directory.members_of)
        assert len(api.calls_to("usergroups.users.list")) == calls  # checks make no Slack call


def test_unavailable_groups_fail_closed_but_plain_ids_still_work() -> None:
    with SlackWebAPI(TOKEN, usergroups={"S0DBAS": ["U0CAROL"]}, usergroups_available=False) as api:
        directory = directory_for(api)
        assert directory.members_of("S0DBAS") is None
        assert not is_included("U0CAROL", ["S0DBAS"], directory.members_of)
        assert is_included("U0CAROL", ["S0DBAS", "U0CAROL"], directory.members_of)
