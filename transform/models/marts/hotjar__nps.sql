{#-
    Net Promoter Score per survey, nps question and ISO week (UTC): answers 9-10
    are promoters, 7-8 passives, 0-6 detractors; scores outside 0-10 or not
    numbers are left out. nps = 100 * (promoters - detractors) / responses.
-#}
with scored as (
    select
        survey_id,
        question_id,
        {{ iso_week_start('created_time') }} as week_start,
        score
    from {{ ref('hotjar__answers') }}
    where question_type = 'nps'
        and score between 0 and 10
),

weekly as (
    select
        survey_id,
        question_id,
        week_start,
        count(*) as responses,
        cast(sum(case when score >= 9 then 1 else 0 end) as bigint) as promoters,
        cast(sum(case when score >= 7 and score < 9 then 1 else 0 end) as bigint) as passives,
        cast(sum(case when score < 7 then 1 else 0 end) as bigint) as detractors
    from scored
    group by survey_id, question_id, week_start
),

questions as (
    select survey_id, question_id, question_text from {{ ref('stg_hotjar__survey_questions') }}
),

surveys as (
    select survey_id, site_id, survey_name from {{ ref('stg_hotjar__surveys') }}
)

select
    weekly.survey_id,
    weekly.question_id,
    weekly.week_start,
    weekly.responses,
    weekly.promoters,
    weekly.passives,
    weekly.detractors,
    100 * {{ divide('weekly.promoters - weekly.detractors', 'weekly.responses') }} as nps,
    surveys.site_id,
    surveys.survey_name,
    questions.question_text
from weekly
left join surveys
    on surveys.survey_id = weekly.survey_id
left join questions
    on questions.survey_id = weekly.survey_id
    and questions.question_id = weekly.question_id
