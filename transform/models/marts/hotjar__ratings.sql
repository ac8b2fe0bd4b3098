{#-
    Rating questions (rating-1-5, rating-1-7, reaction 1-5) per survey, question
    and ISO week (UTC): average score and top-box share (CSAT: the share of
    answers in the scale's top two values). Scores off the scale are left out.
-#}
with scored as (
    select
        survey_id,
        question_id,
        question_type,
        {{ scale_max('question_type') }} as scale_max,
        {{ iso_week_start('created_time') }} as week_start,
        score
    from {{ ref('hotjar__answers') }}
    where question_type in ('rating-1-5', 'rating-1-7', 'reaction')
        and score between {{ scale_min('question_type') }} and {{ scale_max('question_type') }}
),

weekly as (
    select
        survey_id,
        question_id,
        question_type,
        scale_max,
        week_start,
        count(*) as responses,
        sum(score) as score_total,
        cast(sum(case when score >= scale_max - 1 then 1 else 0 end) as bigint) as top_box_responses
    from scored
    group by survey_id, question_id, question_type, scale_max, week_start
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
    weekly.question_type,
    weekly.scale_max,
    weekly.responses,
    {{ divide('weekly.score_total', 'weekly.responses') }} as avg_score,
    weekly.top_box_responses,
    {{ divide('weekly.top_box_responses', 'weekly.responses') }} as top_box_share,
    surveys.site_id,
    surveys.survey_name,
    questions.question_text
from weekly
left join surveys
    on surveys.survey_id = weekly.survey_id
left join questions
    on questions.survey_id = weekly.survey_id
    and questions.question_id = weekly.question_id
