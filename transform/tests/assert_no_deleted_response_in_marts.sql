{#-
    No response gone from Hotjar reaches a mart: not one whose row is marked deleted
    (by hotjar-reconcile, by target-postgres's activate_version, or by the record
    itself), nor one of a survey that is gone. Rows returned are failures.
-#}

with gone_surveys as (
    {{ deleted_keys('surveys', 'id') }}
),

gone_responses as (
    {{ deleted_keys('survey_responses', 'id') }}
    union
    select cast(id as text) as deleted_key
    from {{ source('hotjar', 'survey_responses') }}
    where cast(survey_id as text) in (select deleted_key from gone_surveys)
)

select 'hotjar__answers' as mart, response_id as gone_key
from {{ ref('hotjar__answers') }}
where response_id in (select deleted_key from gone_responses)
    or survey_id in (select deleted_key from gone_surveys)

union all

select 'hotjar__response_attributes' as mart, response_id as gone_key
from {{ ref('hotjar__response_attributes') }}
where response_id in (select deleted_key from gone_responses)
    or survey_id in (select deleted_key from gone_surveys)

union all

select 'hotjar__nps' as mart, survey_id as gone_key
from {{ ref('hotjar__nps') }}
where survey_id in (select deleted_key from gone_surveys)

union all

select 'hotjar__ratings' as mart, survey_id as gone_key
from {{ ref('hotjar__ratings') }}
where survey_id in (select deleted_key from gone_surveys)
