-- buildlog 0.1.0 -> 0.2.0: hardening against hostile input and operator
-- mistakes (issue 8).  CREATE EXTENSION buildlog installs 0.1.0 and applies
-- this script, so every install runs the upgrade path.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.2.0'" to load this file. \quit

-- ------------------------------------------------ stored data and redaction

-- ------------------------------------------------ aggregation and maintenance

-- ------------------------------------------------ ingest

-- ------------------------------------------------ drain

-- wire-format parser (issue 8, items 6-8): parse_message also reports the
-- U+FFFD substitutions, and its reference parser is no longer jansson
drop function buildlog.parse_message(bytea, boolean);
create function buildlog.parse_message(body bytea, reference boolean default false,
  out ok boolean, out job_id bigint, out number int, out final boolean, out content text,
  out reason text, out replaced int)
returns record
language c stable strict parallel safe
as 'MODULE_PATHNAME', 'buildlog_parse_message';
comment on function buildlog.parse_message(bytea, boolean) is
  'What the drain makes of a delivery body, without writing it: the part (ok) with the number of U+FFFD substitutions in its content (replaced), or the reason it would be rejected. Check a fixed body before buildlog.replay_rejected(). reference = true parses with the reference parser only (tests compare it with the fast scanner).';

-- ------------------------------------------------ archive and S3

-- ------------------------------------------------ monitoring

-- ------------------------------------------------ privileges and search_path
