"""What each Slack Web API method does, against the recorded conversation. No HTTP here.

Answers follow Slack's shapes and error codes for the methods migrabot uses, so code that
handles `SlackApiError(e.response["error"])` behaves here as it does against Slack.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from .limits import HOME_BLOCKS, MAX_TEXT, VIEW_BYTES, block_errors, view_errors
from .store import Conversation, Ephemeral, File, Message

Params = Mapping[str, Any]
Answer = dict[str, Any]

# Where the bot stands in a channel. Absent from `channels`: it exists and the bot is a member.
# "not_joined" is a public channel the bot is not in; "private" a private channel or DM it is not in.
ChannelAccess = Literal["member", "not_joined", "private", "unknown"]

RESPONSE_URL_USES = 5  # Slack: "up to 5 times within 30 minutes"
RESPONSE_URL_LIFETIME = 30 * 60.0
TRIGGER_LIFETIME = 3.0  # Slack: a trigger_id "expires in three seconds"


class SlackError(Exception):
    """A Slack error code, answered as {"ok": false, "error": code, **extra}."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


@dataclass
class _Upload:
    name: str
    data: bytes | None = None  # None until the bytes are POSTed to the upload URL


def _json_field(value: Any) -> Any:
    # Form-encoded requests carry blocks/files as JSON text, JSON requests as real lists.
    return json.loads(value) if isinstance(value, str) and value else value


def _blocks(params: Params) -> list[dict[str, Any]] | None:
    try:
        blocks = _json_field(params.get("blocks"))
    except ValueError:
        raise SlackError("invalid_blocks_format") from None
    if blocks and not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    return list(blocks) if blocks else None


def check_message(text: str, blocks: list[Any] | None) -> None:
    """Slack's size limits on a message (see limits.py), answered as Slack answers them."""
    if len(text) > MAX_TEXT:
        raise SlackError("msg_too_long")
    if blocks is not None and (errors := block_errors(blocks)):
        # Slack lists each problem twice: in `errors`, and as "[ERROR] ..." in response_metadata.
        raise SlackError(
            "invalid_blocks", errors=errors, response_metadata={"messages": [f"[ERROR] {e}" for e in errors]}
        )


def show_response(
    store: Conversation, body: Mapping[str, Any], user: str, channel: str, thread_ts: str | None = None
) -> Message | Ephemeral:
    """An answer to a command or click (an ack, or a POST to a response_url) as Slack shows it:
    to that person only, unless response_type is in_channel."""
    text, blocks = body.get("text") or "", body.get("blocks") or ()
    if body.get("response_type") == "in_channel":
        return store.post(channel, None, text, blocks, thread_ts)
    return store.post_ephemeral(channel, user, text, blocks, thread_ts)


@dataclass
class _Hook:
    """A response_url Slack handed to the bot."""

    user: str
    channel: str
    issued: float
    original: Message | None  # the message a click came from: what replace_original replaces
    thread_ts: str | None  # a click in a thread is answered there
    last: Message | Ephemeral | None = None  # else the last answer posted through the URL
    uses: int = 0


class WebAPIMethods:
    """Slack's semantics for auth, chat, users, usergroups and the files v2 upload."""

    def __init__(
        self,
        store: Conversation,
        *,
        bot_user_id: str,
        bot_name: str,
        team_id: str,
        team_domain: str,
        users: Mapping[str, Mapping[str, str]],
        usergroups: Mapping[str, list[str]],
        usergroups_available: bool,
        upload_url: Callable[[str], str],
        response_url: Callable[[str], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.bot_user_id, self.bot_name = bot_user_id, bot_name
        self.team_id, self.team_domain = team_id, team_domain
        self.users = dict(users)
        self.usergroups = {gid: list(members) for gid, members in usergroups.items()}
        self.usergroups_available = usergroups_available
        self._upload_url = upload_url
        self._uploads: dict[str, _Upload] = {}
        self._uploads_lock = threading.Lock()
        self._file_numbers = itertools.count(1)  # next() on a count is atomic; a generator's is not
        self.channels: dict[str, ChannelAccess] = {}
        self._response_url = response_url
        self._clock = clock
        self._hooks: dict[str, _Hook] = {}
        self._hooks_lock = threading.Lock()
        self._handlers: dict[str, Callable[[Params], Answer]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "users.info": self.users_info,
            "usergroups.users.list": self.usergroups_users_list,
            "files.getUploadURLExternal": self.files_get_upload_url_external,
            "files.completeUploadExternal": self.files_complete_upload_external,
            "views.publish": self.views_publish,
            "views.open": self.views_open,
        }

    def call(self, method: str, params: Params) -> Answer:
        handler = self._handlers.get(method)
        try:
            if handler is None:
                raise SlackError("unknown_method")
            return {"ok": True, **handler(params)}
        except SlackError as err:
            return {"ok": False, "error": err.code, **err.extra}

    def _reach(self, channel: str) -> None:
        # To a bot, a private channel or DM it is not in does not exist; a public one says so.
        access = self.channels.get(channel, "member")
        if access == "not_joined":
            raise SlackError("not_in_channel")
        if access != "member":
            raise SlackError("channel_not_found")

    # -- auth / users ----------------------------------------------------------------------

    def auth_test(self, params: Params) -> Answer:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B" + self.bot_user_id.lstrip("U"),
            "is_enterprise_install": False,
        }

    def users_info(self, params: Params) -> Answer:
        """A user object as Slack gives it: ``name`` is the username, the profile holds the real
        name and the display name, which is "" for someone who never chose one."""
        user_id = params.get("user", "")
        if user_id == self.bot_user_id:
            name, real_name, display_name, is_bot = self.bot_name, self.bot_name, "", True
        elif user_id in self.users:
            name = self.users[user_id]["name"]
            real_name, is_bot = self.users[user_id].get("real_name", name), False
            display_name = self.users[user_id].get("display_name", "")
        else:
            raise SlackError("user_not_found")
        profile = {
            "real_name": real_name,
            "display_name": display_name,
            "real_name_normalized": real_name,
            "display_name_normalized": display_name,
            "team": self.team_id,
        }
        return {
            "user": {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": real_name,
                "is_bot": is_bot,
                "deleted": False,
                "profile": profile,
            }
        }

    def usergroups_users_list(self, params: Params) -> Answer:
        if not self.usergroups_available:
            raise SlackError("paid_teams_only")  # what a free workspace answers
        members = self.usergroups.get(params.get("usergroup", ""))
        if members is None:
            raise SlackError("no_such_subteam")
        return {"users": list(members)}

    # -- chat --------------------------------------------------------------------------------

    def chat_post_message(self, params: Params) -> Answer:
        channel, text, blocks = params.get("channel"), params.get("text") or "", _blocks(params)
        if not channel:
            raise SlackError("channel_not_found")
        self._reach(channel)
        if not text and not blocks:
            raise SlackError("no_text")
        check_message(text, blocks)
        thread_ts = params.get("thread_ts") or None
        msg = self.store.post(channel, self.bot_user_id, text, blocks or (), thread_ts)
        return {"channel": channel, "ts": msg.ts, "message": msg.as_api()}

    def chat_update(self, params: Params) -> Answer:
        channel, ts = params.get("channel", ""), params.get("ts", "")
        text, blocks = params.get("text"), _blocks(params)
        self._reach(channel)
        if text is None and blocks is None:
            raise SlackError("no_text")
        check_message(text or "", blocks)
        msg = self.store.update(channel, ts, text, blocks)
        if msg is None:
            raise SlackError("message_not_found")
        return {"channel": channel, "ts": ts, "text": msg.text, "message": msg.as_api()}

    def chat_post_ephemeral(self, params: Params) -> Answer:
        channel, user = params.get("channel"), params.get("user", "")
        text, blocks = params.get("text") or "", _blocks(params)
        if not channel:
            raise SlackError("channel_not_found")
        self._reach(channel)
        if user not in self.users:
            raise SlackError("user_not_in_channel")
        if not text and not blocks:
            raise SlackError("no_text")
        check_message(text, blocks)
        eph = self.store.post_ephemeral(channel, user, text, blocks or (), params.get("thread_ts") or None)
        return {"message_ts": eph.ts}

    def chat_get_permalink(self, params: Params) -> Answer:
        """A message's permalink, as Slack forms it: a reply's names its thread and channel too.
        The bot need not be in the channel (a public one); a channel it cannot see does not exist."""
        channel, ts = params.get("channel", ""), params.get("message_ts", "")
        if not channel or self.channels.get(channel, "member") in ("private", "unknown"):
            raise SlackError("channel_not_found")
        msg = self.store.message(channel, ts)
        if msg is None:
            raise SlackError("message_not_found")
        permalink = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        if msg.thread_ts:
            permalink += f"?{urlencode({'thread_ts': msg.thread_ts, 'cid': channel})}"
        return {"channel": channel, "permalink": permalink}

    # -- views: the App Home tab -----------------------------------------------------------

    def views_publish(self, params: Params) -> Answer:
        """Publish a user's home tab: a known user, a view of type home, at most 100 valid blocks."""
        user = params.get("user_id")
        try:
            view = _json_field(params.get("view"))
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not user or not isinstance(view, dict):
            raise SlackError("invalid_arguments")
        if user not in self.users:
            raise SlackError("user_not_found")
        errors = [] if view.get("type") == "home" else ["must be home [json-pointer:/view/type]"]
        errors += block_errors(view.get("blocks", []), most=HOME_BLOCKS, where="/view/blocks")
        if errors:
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
        self.store.publish_home(user, dict(view))
        view_id = f"V{abs(hash(user)) % 10**10:010d}"
        return {"view": {"id": view_id, "team_id": self.team_id, **view}}

    def views_open(self, params: Params) -> Answer:
        """Open a modal for whoever a trigger_id was handed to, as Slack checks it: the trigger
        first (one Slack handed out, within 3 seconds, used once), then the view (limits.py)."""
        trigger_id = params.get("trigger_id")
        try:
            view = _json_field(params.get("view"))
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not trigger_id or not isinstance(view, dict):
            raise SlackError("invalid_arguments", response_metadata={"messages": ["invalid `trigger_id`"]})
        trigger = self.store.trigger(str(trigger_id))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.exchanged:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued > TRIGGER_LIFETIME:  # the store's clock, not `clock`
            raise SlackError("expired_trigger_id")
        if len(json.dumps(view).encode()) > VIEW_BYTES:
            raise SlackError("view_too_large")
        if errors := view_errors(view):
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
        modal = self.store.open_modal(trigger.id, view)
        if modal is None:  # exchanged meanwhile, by a concurrent call
            raise SlackError("exchanged_trigger_id")
        return {"view": self._view_answer(modal.id, modal.hash, view)}

    def _view_answer(self, view_id: str, view_hash: str, view: Mapping[str, Any]) -> dict[str, Any]:
        """A view as Slack's answers and payloads show it: what was sent, plus Slack's own fields."""
        defaults = {"private_metadata": "", "callback_id": "", "external_id": "", "clear_on_close": False}
        return {
            **defaults,
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "state": {"values": {}},
            "hash": view_hash,
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": "A0MIGRABOT",
            "bot_id": "B" + self.bot_user_id.lstrip("U"),
        }

    # -- files v2: get an upload URL, POST the bytes there, complete to share --------------

    def files_get_upload_url_external(self, params: Params) -> Answer:
        filename, length = params.get("filename"), params.get("length")
        if not filename or length in (None, ""):
            raise SlackError("invalid_arguments")
        file_id = f"F{next(self._file_numbers):08d}"
        with self._uploads_lock:
            self._uploads[file_id] = _Upload(name=filename)
        return {"upload_url": self._upload_url(file_id), "file_id": file_id}

    def receive_upload(self, file_id: str, data: bytes) -> bool:
        """Store the bytes POSTed to an upload URL; False if the URL was never issued."""
        with self._uploads_lock:
            upload = self._uploads.get(file_id)
            if upload is None:
                return False
            upload.data = data
            return True

    def files_complete_upload_external(self, params: Params) -> Answer:
        requested = _json_field(params.get("files")) or []
        channel, thread_ts = params.get("channel_id") or None, params.get("thread_ts") or None
        if not requested or (thread_ts and not channel):
            raise SlackError("invalid_arguments")
        files: list[File] = []
        with self._uploads_lock:
            for wanted in requested:
                upload = self._uploads.get(wanted.get("id", ""))
                if upload is None or upload.data is None:
                    raise SlackError("file_not_found")
                title = wanted.get("title") or upload.name
                files.append(File(wanted["id"], upload.name, title, upload.data.decode("utf-8", "replace")))
        if channel:
            self.store.post(channel, self.bot_user_id, params.get("initial_comment") or "", (), thread_ts, files)
        return {"files": [{"id": f.id, "name": f.name, "title": f.title} for f in files]}

    # -- response_url: up to 5 answers within 30 minutes, to whoever typed or clicked ------------

    def issue_response_url(
        self, user: str, channel: str, original: Message | None = None, thread_ts: str | None = None
    ) -> str:
        """A response_url for a slash command (no `original`) or a click on `original`."""
        hook_id = uuid.uuid4().hex
        with self._hooks_lock:
            self._hooks[hook_id] = _Hook(user, channel, self._clock(), original, thread_ts)
        return self._response_url(hook_id)

    def respond(self, hook_id: str, payload: Params) -> tuple[int, Answer]:
        """A POST to a response_url: (HTTP status, answer). Channel membership does not matter here."""
        with self._hooks_lock:
            hook = self._hooks.get(hook_id)
            if hook is None:
                return 404, {"ok": False, "error": "no_service"}
            # "Expired url", space and all, is what Slack answers late (Sentry's Slack code matches on
            # it); Slack documents no code for a sixth use, "used_url" is the stand-in's.
            if self._clock() - hook.issued > RESPONSE_URL_LIFETIME:
                return 404, {"ok": False, "error": "Expired url"}
            if hook.uses >= RESPONSE_URL_USES:
                return 404, {"ok": False, "error": "used_url"}
            text, blocks = payload.get("text") or "", payload.get("blocks") or None
            try:
                if not text and not blocks:
                    raise SlackError("no_text")
                check_message(text, blocks)
            except SlackError as err:
                return 400, {"ok": False, "error": err.code, **err.extra}
            hook.uses += 1
            target = hook.original or hook.last
            if payload.get("replace_original") and isinstance(target, Message):
                self.store.update(target.channel, target.ts, text, blocks or ())
            elif payload.get("replace_original") and isinstance(target, Ephemeral):
                hook.last = self.store.replace_ephemeral(target.ts, text, blocks or ())
            else:
                hook.last = show_response(self.store, payload, hook.user, hook.channel, hook.thread_ts)
        return 200, {"ok": True}
