{#-
    The raw tables are created by a loader from the tap's SCHEMA messages, so their
    columns and types vary with the loader, its settings and the tap's stream maps:
    target-postgres writes arrays of objects as jsonb[] and target-duckdb as JSON;
    scripts/postgres_timestamptz.sql may have turned timestamps into timestamptz;
    the tap-hotjar--private recipe drops survey_responses.user_attributes; _sdc_*
    columns exist only with the loaders' metadata settings on. The staging models
    look at what is there and read it accordingly.
-#}

{% macro source_columns(relation) %}
    {#- {lower-case column name: lower-case data type}; empty while dbt parses. -#}
    {%- set found = {} -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do found.update({column.name | lower: column.data_type | lower}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{% endmacro %}

{% macro column_or_null(columns, name, data_type) %}
    {#- The column cast to data_type, or a typed null when the table lacks it. -#}
    {%- if name in columns -%}
        cast({{ adapter.quote(name) }} as {{ data_type }})
    {%- else -%}
        cast(null as {{ data_type }})
    {%- endif -%}
{% endmacro %}

{% macro json_or_null(columns, name) %}
    {#- A JSON column as this database's JSON type (jsonb[] becomes one jsonb array). -#}
    {%- if name in columns -%}
        {{ as_json(adapter.quote(name)) }}
    {%- else -%}
        cast(null as {{ json_type() }})
    {%- endif -%}
{% endmacro %}

{% macro utc_timestamp(columns, name) %}
    {#-
        A timestamp without time zone, in UTC. The loaders write UTC into
        timestamp columns; a timestamptz column (after the README's conversion)
        is turned back to UTC explicitly, whatever the session's time zone.
    -#}
    {%- set data_type = columns.get(name) -%}
    {%- if data_type is none -%}
        cast(null as timestamp)
    {%- elif 'with time zone' in data_type or data_type == 'timestamptz' -%}
        ({{ adapter.quote(name) }} at time zone 'UTC')
    {%- else -%}
        cast({{ adapter.quote(name) }} as timestamp)
    {%- endif -%}
{% endmacro %}

{% macro latest_copy(relation, columns, key_columns, deleted=false) %}
    {#-
        One row per primary key. Targets merge on the key, but an append-only load
        keeps every copy, and the tap may emit the response at a bookmark again on
        the next run. Of several copies the most recently extracted one wins.

        A key whose winning copy is marked deleted (`_sdc_deleted_at`: by
        hotjar-reconcile, by target-postgres's activate_version, or carried by a
        record) is gone from Hotjar: left out here, or, with deleted=true, the only
        rows returned (for the cascades and tests that need the deleted keys).
    -#}
    {%- set order_by = [] -%}
    {%- for name in ['_sdc_extracted_at', '_sdc_batched_at', '_sdc_sequence'] -%}
        {%- if name in columns -%}
            {%- do order_by.append(adapter.quote(name) ~ ' desc nulls last') -%}
        {%- endif -%}
    {%- endfor -%}
    select *
    from (
        select
            copies.*,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by {{ order_by | join(', ') if order_by else key_columns | join(', ') }}
            ) as hotjar_copy_rank
        from {{ relation }} as copies
    ) as ranked
    where hotjar_copy_rank = 1
    {%- if '_sdc_deleted_at' in columns %}
        and _sdc_deleted_at is {{ 'not null' if deleted else 'null' }}
    {%- elif deleted %}
        and false
    {%- endif %}
{% endmacro %}

{% macro deleted_keys(source_table, key_column) %}
    {#- The keys of a raw table that are gone from Hotjar (see latest_copy), as a subquery. -#}
    {%- set relation = source('hotjar', source_table) -%}
    select {{ key_column }} as deleted_key
    from ({{ latest_copy(relation, source_columns(relation), [key_column], deleted=true) }}) as gone
{% endmacro %}

{% macro not_deleted(source_table, key_column, column) %}
    {#- A condition: `column` does not name a key that is gone from `source_table`. -#}
    not exists (
        select 1 from ({{ deleted_keys(source_table, key_column) }}) as deleted
        where deleted.deleted_key = {{ column }}
    )
{% endmacro %}
