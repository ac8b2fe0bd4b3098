{%- set relation = source('hotjar', 'survey_responses') -%}
{%- set columns = source_columns(relation) -%}

with responses as (
    {{ latest_copy(relation, columns, ['id']) }}
)

select
    cast(id as text) as response_id,
    {{ column_or_null(columns, 'site_id', 'bigint') }} as site_id,
    {{ column_or_null(columns, 'survey_id', 'text') }} as survey_id,
    {{ utc_timestamp(columns, 'created_time') }} as created_time,
    {{ column_or_null(columns, 'hotjar_user_id', 'text') }} as hotjar_user_id,
    {{ column_or_null(columns, 'is_complete', 'boolean') }} as is_complete,
    {{ column_or_null(columns, 'device', 'text') }} as device,
    {{ column_or_null(columns, 'country', 'text') }} as country,
    {{ column_or_null(columns, 'browser', 'text') }} as browser,
    {{ column_or_null(columns, 'os', 'text') }} as os,
    {{ column_or_null(columns, 'recording_url', 'text') }} as recording_url,
    {{ column_or_null(columns, 'response_origin_url', 'text') }} as response_origin_url,
    {% if 'window_size' in columns -%}
    cast(window_size ->> 'width' as bigint) as window_width,
    cast(window_size ->> 'height' as bigint) as window_height,
    {%- else -%}
    cast(null as bigint) as window_width,
    cast(null as bigint) as window_height,
    {%- endif %}
    {#- Absent when the tap-hotjar--private recipe dropped them: no attributes then. -#}
    {{ json_or_null(columns, 'user_attributes') }} as user_attributes
from responses
{#- The responses of a survey gone from Hotjar are gone with it. #}
where {{ not_deleted('surveys', 'id', 'responses.survey_id') }}
