{%- set relation = source('hotjar', 'surveys') -%}
{%- set columns = source_columns(relation) -%}

with surveys as (
    {{ latest_copy(relation, columns, ['id']) }}
)

select
    cast(id as text) as survey_id,
    {{ column_or_null(columns, 'site_id', 'bigint') }} as site_id,
    {{ column_or_null(columns, 'name', 'text') }} as survey_name,
    {{ column_or_null(columns, 'type', 'text') }} as survey_type,
    {{ column_or_null(columns, 'is_enabled', 'boolean') }} as is_enabled,
    {{ column_or_null(columns, 'sentiment_analysis_enabled', 'boolean') }} as is_sentiment_analysis_enabled,
    {{ utc_timestamp(columns, 'created_time') }} as created_time,
    {{ utc_timestamp(columns, 'updated_time') }} as updated_time,
    {{ column_or_null(columns, 'url', 'text') }} as url
from surveys
