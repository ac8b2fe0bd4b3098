{%- set relation = source('hotjar', 'survey_questions') -%}
{%- set columns = source_columns(relation) -%}

with questions as (
    {{ latest_copy(relation, columns, ['survey_id', 'id']) }}
)

select
    cast(survey_id as text) as survey_id,
    cast(id as text) as question_id,
    {{ column_or_null(columns, 'site_id', 'bigint') }} as site_id,
    {{ column_or_null(columns, 'position', 'bigint') }} as question_position,
    {{ column_or_null(columns, 'type', 'text') }} as question_type,
    {{ column_or_null(columns, 'text', 'text') }} as question_text,
    {{ column_or_null(columns, 'is_required', 'boolean') }} as is_required,
    {% if 'labels' in columns -%}
    cast(labels ->> 'low_label' as text) as low_label,
    cast(labels ->> 'high_label' as text) as high_label,
    {%- else -%}
    cast(null as text) as low_label,
    cast(null as text) as high_label,
    {%- endif %}
    {{ json_or_null(columns, 'choices') }} as choices,
    {{ column_or_null(columns, 'image_url', 'text') }} as image_url
from questions
{#- The questions of a survey gone from Hotjar are gone with it. #}
where {{ not_deleted('surveys', 'id', 'questions.survey_id') }}
