-- buildlog 0.1.0 -> 0.2.0: hardening against hostile input and operator
-- mistakes (issue 8).  CREATE EXTENSION buildlog installs 0.1.0 and applies
-- this script, so every install runs the upgrade path.
\echo Use "ALTER EXTENSION buildlog UPDATE TO '0.2.0'" to load this file. \quit

-- ------------------------------------------------ stored data and redaction

-- ------------------------------------------------ aggregation and maintenance

-- ------------------------------------------------ ingest

-- ------------------------------------------------ drain

-- ------------------------------------------------ archive and S3

-- ------------------------------------------------ monitoring

-- ------------------------------------------------ privileges and search_path
