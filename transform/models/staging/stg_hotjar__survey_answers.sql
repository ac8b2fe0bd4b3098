{%- set relation = source('hotjar', 'survey_answers') -%}
{%- set columns = source_columns(relation) -%}

with answers as (
    {{ latest_copy(relation, columns, ['response_id', 'position']) }}
)

select
    cast(response_id as text) as response_id,
    cast(position as bigint) as position,
    {{ column_or_null(columns, 'site_id', 'bigint') }} as site_id,
    {{ column_or_null(columns, 'survey_id', 'text') }} as survey_id,
    {{ column_or_null(columns, 'question_id', 'text') }} as question_id,
    {#- The type the question had when the tap read the survey; null for a deleted question. -#}
    {{ column_or_null(columns, 'question_type', 'text') }} as question_type,
    {{ column_or_null(columns, 'answer', 'text') }} as answer,
    {{ column_or_null(columns, 'comment', 'text') }} as comment,
    {{ column_or_null(columns, 'sentiment', 'text') }} as sentiment,
    {{ json_or_null(columns, 'tags') }} as tags,
    {{ utc_timestamp(columns, 'created_time') }} as created_time
from answers
{#- The answers of a response (or survey) gone from Hotjar are gone with it. #}
where {{ not_deleted('survey_responses', 'id', 'answers.response_id') }}
    and {{ not_deleted('surveys', 'id', 'answers.survey_id') }}
