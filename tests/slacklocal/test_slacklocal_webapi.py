"""The Web API stand-in, driven by a real slack_sdk WebClient over HTTP."""

from __future__ import annotations

import json
import urllib.request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slacklocal import SlackWebAPI

CHANNEL = "C0MIGRATE"


def test_auth_test_names_the_bot(web: WebClient) -> None:
    answer = web.auth_test()
    assert answer["user_id"] == "U0MIGRABOT"
    assert answer["team_id"] == "T0LOCAL"
    assert answer["bot_id"]


@pytest.mark.parametrize("token", ["xoxb-wrong", ""])
def test_other_or_missing_token_is_invalid_auth(api: SlackWebAPI, token: str) -> None:
    with pytest.raises(SlackApiError) as err:
        WebClient(token=token or None, base_url=api.base_url).chat_postMessage(channel=CHANNEL, text="hi")
    assert err.value.response["error"] == "invalid_auth"
    assert api.store.messages(CHANNEL) == []


def test_post_message_and_thread_reply(api: SlackWebAPI, web: WebClient) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*plan* staging"}}]
    parent = web.chat_postMessage(channel=CHANNEL, text="plan staging", blocks=blocks)
    reply = web.chat_postMessage(channel=CHANNEL, text="working on it", thread_ts=parent["ts"])

    assert parent["ok"] and parent["channel"] == CHANNEL
    assert float(reply["ts"]) > float(parent["ts"])
    stored = api.store.parent(CHANNEL, parent["ts"])
    assert stored is not None and stored.user == "U0MIGRABOT" and list(stored.blocks) == blocks
    assert [m.text for m in api.store.replies(CHANNEL, parent["ts"])] == ["working on it"]
    assert api.store.messages(CHANNEL) == [stored]


def test_ts_is_unique_and_increasing(web: WebClient) -> None:
    stamps = [web.chat_postMessage(channel=CHANNEL, text=str(i))["ts"] for i in range(5)]
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 5
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


def test_update_replaces_text_and_blocks(api: SlackWebAPI, web: WebClient) -> None:
    ts = web.chat_postMessage(channel=CHANNEL, text="awaiting approval")["ts"]
    new_blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@U2BOB>"}}]
    web.chat_update(channel=CHANNEL, ts=ts, text="approved", blocks=new_blocks)

    card = api.store.parent(CHANNEL, ts)
    assert card is not None
    assert (card.text, list(card.blocks), card.edits) == ("approved", new_blocks, 1)


def test_update_of_unknown_message_is_message_not_found(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        web.chat_update(channel=CHANNEL, ts="1.000100", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_post_ephemeral_reaches_one_user(api: SlackWebAPI, web: WebClient) -> None:
    answer = web.chat_postEphemeral(channel=CHANNEL, user="U1ALICE", text="unknown env `stagign`")
    assert answer["message_ts"]
    assert [e.text for e in api.store.ephemerals("U1ALICE")] == ["unknown env `stagign`"]
    assert api.store.ephemerals("U2BOB") == []
    assert api.store.messages(CHANNEL) == []
    with pytest.raises(SlackApiError) as err:
        web.chat_postEphemeral(channel=CHANNEL, user="U9NOBODY", text="hi")
    assert err.value.response["error"] == "user_not_in_channel"


def test_get_permalink_answers_as_slack_does(api: SlackWebAPI, web: WebClient) -> None:
    card = web.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    reply = web.chat_postMessage(channel=CHANNEL, text="in its thread", thread_ts=card)["ts"]
    answer = web.chat_getPermalink(channel=CHANNEL, message_ts=card)
    assert (answer["ok"], answer["channel"]) == (True, CHANNEL)
    assert answer["permalink"] == f"https://local.slack.com/archives/{CHANNEL}/p{card.replace('.', '')}"
    in_thread = web.chat_getPermalink(channel=CHANNEL, message_ts=reply)["permalink"]
    assert in_thread == (
        f"https://local.slack.com/archives/{CHANNEL}/p{reply.replace('.', '')}?thread_ts={card}&cid={CHANNEL}"
    )
    with pytest.raises(SlackApiError) as err:
        web.chat_getPermalink(channel=CHANNEL, message_ts="1.000100")
    assert err.value.response["error"] == "message_not_found"
    api.set_channel("C0SECRET", "private")
    with pytest.raises(SlackApiError) as err:
        web.chat_getPermalink(channel="C0SECRET", message_ts=card)
    assert err.value.response["error"] == "channel_not_found"


def test_users_info(web: WebClient) -> None:
    user = web.users_info(user="U1ALICE")["user"]
    assert (user["name"], user["real_name"], user["is_bot"]) == ("alice", "Alice Liddell", False)
    # Slack's profile: the real name, and a display name that is empty until the person sets one.
    assert (user["profile"]["real_name"], user["profile"]["display_name"]) == ("Alice Liddell", "")
    with pytest.raises(SlackApiError) as err:
        web.users_info(user="U9NOBODY")
    assert err.value.response["error"] == "user_not_found"


def test_users_info_gives_the_display_name_a_person_chose() -> None:
    users = {"U1ALICE": {"name": "alice", "real_name": "Alice Liddell", "display_name": "ali"}}
    with SlackWebAPI("xoxb-t", users=users) as api:
        profile = WebClient(token="xoxb-t", base_url=api.base_url).users_info(user="U1ALICE")["user"]["profile"]
    assert profile["display_name"] == profile["display_name_normalized"] == "ali"
    assert profile["real_name"] == "Alice Liddell"


def test_usergroups_users_list(web: WebClient) -> None:
    assert web.usergroups_users_list(usergroup="S0DBAS")["users"] == ["U2BOB"]
    with pytest.raises(SlackApiError) as err:
        web.usergroups_users_list(usergroup="S9NONE")
    assert err.value.response["error"] == "no_such_subteam"


def test_usergroups_unavailable_on_a_free_workspace() -> None:
    free = SlackWebAPI("xoxb-t", usergroups={"S0DBAS": ["U2BOB"]}, usergroups_available=False)
    with free, pytest.raises(SlackApiError) as err:
        WebClient(token="xoxb-t", base_url=free.base_url).usergroups_users_list(usergroup="S0DBAS")
    assert err.value.response["error"] == "paid_teams_only"


def test_files_upload_v2_attaches_the_file_in_the_thread(api: SlackWebAPI, web: WebClient) -> None:
    parent = web.chat_postMessage(channel=CHANNEL, text="showmigrations staging")["ts"]
    content = "\n".join(f"[X] 00{i:02d}_step" for i in range(30))
    answer = web.files_upload_v2(
        channel=CHANNEL, thread_ts=parent, content=content, filename="showmigrations.txt", title="Full output"
    )

    assert answer["file"]["title"] == "Full output"
    (reply,) = api.store.replies(CHANNEL, parent)
    (file,) = reply.files
    assert (file.name, file.title, file.content) == ("showmigrations.txt", "Full output", content)
    methods = [c.method for c in api.calls]
    assert methods[-3:] == ["files.getUploadURLExternal", "(upload)", "files.completeUploadExternal"]


def test_complete_upload_of_a_file_never_uploaded_is_refused(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        web.files_completeUploadExternal(files=[{"id": "F404", "title": "x"}], channel_id=CHANNEL)
    assert err.value.response["error"] == "file_not_found"


def test_unknown_method(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as err:
        web.api_call("conversations.kick", json={"channel": CHANNEL, "user": "U1ALICE"})
    assert err.value.response["error"] == "unknown_method"


def test_form_encoded_and_json_bodies_are_both_understood(api: SlackWebAPI) -> None:
    blocks = [{"type": "divider"}]
    for content_type, body in [
        ("application/json", json.dumps({"channel": CHANNEL, "blocks": blocks})),
        ("application/x-www-form-urlencoded", f"channel={CHANNEL}&blocks={json.dumps(blocks)}"),
    ]:
        request = urllib.request.Request(
            api.base_url + "chat.postMessage",
            data=body.encode(),
            headers={"Content-Type": content_type, "Authorization": f"Bearer {api.token}"},
        )
        with urllib.request.urlopen(request) as resp:
            assert json.load(resp)["ok"]
    assert [list(m.blocks) for m in api.store.messages(CHANNEL)] == [blocks, blocks]


def test_every_call_is_recorded_without_the_token(api: SlackWebAPI, web: WebClient) -> None:
    web.chat_postMessage(channel=CHANNEL, text="hello")
    with pytest.raises(SlackApiError):
        WebClient(token="xoxb-wrong", base_url=api.base_url).api_call("auth.test", params={"token": "xoxb-wrong"})

    post, denied = api.calls
    assert (post.method, post.params["text"], post.answer["ok"]) == ("chat.postMessage", "hello", True)
    assert (denied.method, denied.answer) == ("auth.test", {"ok": False, "error": "invalid_auth"})
    assert all("token" not in c.params for c in api.calls)
    assert post.at <= denied.at
